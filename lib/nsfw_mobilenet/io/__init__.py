"""Data in and out of models: finding and decoding image files, the on-disk decode cache, video and animation
frames, the generated stand-in dataset, real photo folders, offline weights files, the `tf.data` pipeline and
batched predictions. Imports only `core`; the product (`app`) and training both stand on it."""
