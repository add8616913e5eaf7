"""A local HTTP emulator of the SSP report APIs, driven by a simulated clock."""
