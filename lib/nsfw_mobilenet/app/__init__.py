"""The product: scan images, folders and videos with a trained model, export it to TensorFlow Lite, run it with
LiteRT, write its model card, browse its mistakes in Kangas. Never imports `training` or `studies`, so a scan
starts without the training stack."""
