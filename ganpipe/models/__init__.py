"""The models: hyperparameters, data and serving contracts, preprocessing, classifier, GAN."""
