"""The TFX components: ingestion, training, evaluation, validation, pushes, publishing."""
