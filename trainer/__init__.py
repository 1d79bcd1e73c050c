"""Deep-Emotion itself and the code Transform and the Trainer run: the model and its spatial
transformer, training, preprocessing_fn, run_fn and the served model's export. On contract/ only."""
