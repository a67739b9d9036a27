"""Training plumbing both models share: input datasets, the distribution strategy, progress."""
