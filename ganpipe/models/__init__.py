"""The models: hyperparameters, the data and serving contracts, preprocessing, the MLP classifier and the GAN."""
