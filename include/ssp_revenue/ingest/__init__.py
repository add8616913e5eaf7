"""From an SSP's report to a validated canonical batch: connectors, credentials, normalise, validate."""
