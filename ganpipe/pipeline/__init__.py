"""The pipeline: its configuration, create_pipeline(), the runner and the run's records."""
