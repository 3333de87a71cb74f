"""nsfw-mobilenet: sexual-content detection with MobileNet V1/V2/V3 on resource-limited devices.

Reproduces, corrects and extends *Sexual Content Detection on Resource-Limited Devices Using
Deep Learning* (UCM, 2023). Modules are named after pipeline stages; importing this package
does not import TensorFlow.
"""

__version__ = "0.1.0"
