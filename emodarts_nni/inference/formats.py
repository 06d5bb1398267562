"""The formats a trained model can be exported to, torch-free: ``emodarts export --help``
lists them without loading torch; :mod:`emodarts_nni.inference.export` writes them."""

#: ``emodarts export --format`` values.
FORMATS = ("onnx", "torchscript")

__all__ = ["FORMATS"]
