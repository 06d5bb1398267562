"""The formats a trained model can be exported to, torch-free: ``emodarts export --help``
lists them without loading torch; :mod:`emodarts_nni.inference.export` writes them."""

from __future__ import annotations

import os
from pathlib import Path

#: ``emodarts export --format`` values.
FORMATS = ("onnx", "torchscript")


def sidecar_path(output: str | os.PathLike) -> Path:
    """Where the JSON sidecar of an exported ``output`` goes: ``output + ".json"``."""
    return Path(os.fspath(output) + ".json")


__all__ = ["FORMATS", "sidecar_path"]
