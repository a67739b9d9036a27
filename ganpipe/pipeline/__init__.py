"""The pipeline: its configuration, create_pipeline(), the runner, and what ML Metadata says of a run."""
