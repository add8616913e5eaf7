"""The shared base every stage stands on: errors, the clock, the calendar, settings, the SSP registry and
the canonical schema. Nothing here imports another stage."""
