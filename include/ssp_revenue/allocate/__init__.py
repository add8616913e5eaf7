"""Frozen revenue split by the business team's rules, to the yen, and the monthly close and report."""
