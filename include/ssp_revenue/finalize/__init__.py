"""Final figures: each (SSP, date) frozen once by the ledger; later restatements become adjustments."""
