"""Training: the Keras-facing code that trains one model, or a group of models, per trial."""
