"""The lake on S3 and its Glue catalog: raw bodies kept once, immutable versions, the append-only logs."""
