"""Using a trained model: load a checkpoint, predict on new audio, export (ONNX/TorchScript)."""
