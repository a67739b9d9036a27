"""TFX components: ImageExampleGen, the Trainer, the evaluators, validators, pushers and publisher."""
