"""nsfw-mobilenet: sexual-content detection with MobileNet V1/V2/V3 on resource-limited devices.

Reproduces, corrects and extends *Sexual Content Detection on Resource-Limited Devices Using
Deep Learning* (UCM, 2023). Its layers are subpackages; a lower one never imports a higher one:

    core        settings, paths, configs and the thesis's numbers, backbones as data, taxonomy, exit codes
    io          image files, the decode cache, video frames, the stand-in, weights files, the tf.data pipeline
    evaluation  safety metrics, calibration, operating points, explanations, intervals, run results, plots
    training    models and heads, augmentation, the training run, the final model, `train`
    app         the product: scan, export to TensorFlow Lite, LiteRT, model cards, Kangas (no training code)
    studies     one module per thesis study, named after what it answers

`cli` sits above them all. Importing the package does not import TensorFlow, and the environment is read
only at the edges (`core.settings`).
"""

__version__ = "0.1.0"
