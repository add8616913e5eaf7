"""Running the pipeline: the steps the DAGs and the CLI call, convergence and incidents, the local stack."""
