"""Training as the thesis did it: MobileNet classifiers and their heads, freezing, augmentation (listing 4.5),
the training run with its results JSON, distribution over devices, the final model and the `train` command."""
