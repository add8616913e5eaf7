"""Airflow glue around the ssp_revenue library: hooks for credentials and AWS, task bodies."""
