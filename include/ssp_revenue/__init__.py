"""ssp-revenue: daily SSP revenue reports to a frozen, auditable lake.

The library never imports Airflow: every step is a plain function taking its
settings, clock and clients, so it runs the same from a DAG, the CLI or a test.
"""

__version__ = "0.1.0"
