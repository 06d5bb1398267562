"""Exporting a trained model for deployment: ONNX or TorchScript, plus a JSON sidecar.

The exported graph has one float32 input ``features`` of shape ``(batch, n_mfcc, frames)``
(the batch axis is dynamic) and one output ``logits`` ``(batch, n_classes)``; softmax
gives the probabilities. The features are what :meth:`emodarts_nni.Predictor.features`
returns: MFCCs with the sidecar's ``features`` settings, then ``(x - mean) / std`` with
the sidecar's ``normalisation`` statistics (``null``: none).

* TorchScript: ``torch.jit.trace`` of the frozen model (a frozen NNI cell is plain
  Python control flow over fixed ops, which tracing records exactly).
* ONNX: torch's TorchScript-based exporter (``dynamo=False``, opset
  :data:`ONNX_OPSET`); the ``torch.export`` path needs the extra ``onnxscript`` package
  and gains nothing for these ops. RNN/LSTM stacks export as ONNX ``RNN``/``LSTM`` nodes.

After writing, the file is loaded back and run on a random batch beside the PyTorch model;
the largest absolute difference of the logits goes into the sidecar (``parity``). For ONNX
this needs ``onnxruntime`` (the ``[export]`` extra); without it the check is skipped.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import atomic_path, atomic_write_json
from emodarts_nni.inference.formats import FORMATS, sidecar_path

SIDECAR_FORMAT = "emodarts-export/1"
ONNX_OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "logits"
#: Batch sizes the exported file is checked at (it is traced at the first).
CHECK_BATCHES = (2, 1, 3)


def require_onnx() -> None:
    """Raise a one-line :class:`EmodartsError` when the ONNX exporter's package is missing."""
    try:
        import onnx  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise EmodartsError(
            "--format onnx needs the onnx package: pip install 'emodarts-nni[export]'"
        ) from None


def export_model(
    model: nn.Module, input_shape: tuple[int, int], fmt: str, output: str | os.PathLike
) -> Path:
    """Write ``model`` (eval mode) to ``output`` in format ``fmt`` (atomically)."""
    if fmt not in FORMATS:
        raise EmodartsError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    model = model.eval()
    example = torch.randn(
        CHECK_BATCHES[0], *input_shape, generator=torch.Generator().manual_seed(0)
    )
    output = Path(output)
    with atomic_path(output) as tmp, warnings.catch_warnings(), torch.no_grad():
        # torch deprecates both paths in favour of torch.export; and it warns that an LSTM
        # exported at batch > 1 *may* fail at other batch sizes (the parity check runs 1 and 3).
        warnings.simplefilter("ignore")
        # Into memory first, then written by Python: torch's own file writer aborts the
        # process when the disk is full, where a Python write raises ENOSPC (one line).
        buffer = io.BytesIO()
        if fmt == "torchscript":
            traced = torch.jit.trace(model, example, check_trace=False)  # parity is checked after
            torch.jit.save(traced, buffer)
        else:
            torch.onnx.export(
                model,
                (example,),
                buffer,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        tmp.write_bytes(buffer.getvalue())
    return output


def load_exported(path: str | os.PathLike, fmt: str) -> Any:
    """A callable ``f(np.ndarray (B, n_mfcc, frames) float32) -> logits np.ndarray`` running
    the exported file (TorchScript through ``torch.jit.load``, ONNX through onnxruntime)."""
    path = os.fspath(path)
    if fmt == "torchscript":
        module = torch.jit.load(path, map_location="cpu").eval()

        def run_torchscript(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.as_tensor(x, dtype=torch.float32)).numpy()

        return run_torchscript
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        path, sess_options=options, providers=["CPUExecutionProvider"]
    )

    def run_onnx(x: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(x, dtype=np.float32)})[0]

    return run_onnx


def max_difference(model: nn.Module, exported: Any, x: np.ndarray) -> float:
    """Largest absolute difference between the logits of ``model`` and ``exported`` on ``x``."""
    with torch.no_grad():
        reference = model.eval()(torch.as_tensor(x, dtype=torch.float32)).numpy()
    return float(np.abs(exported(x) - reference).max())


def export_checkpoint(
    checkpoint_path: str | os.PathLike, fmt: str, output: str | os.PathLike
) -> dict[str, Any]:
    """Export a checkpoint's model to ``output`` and write its sidecar; returns the sidecar.

    Bad input (an unknown format, ONNX without its package, an unusable checkpoint) raises
    a one-line :class:`EmodartsError` before anything is written.
    """
    if fmt not in FORMATS:
        raise EmodartsError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    from emodarts_nni.inference.predict import Predictor

    predictor = Predictor.from_checkpoint(checkpoint_path)
    config = predictor.feature_config
    output = export_model(predictor.model, config.shape, fmt, output)
    parity = None
    if fmt == "torchscript" or _has_onnxruntime():
        exported = load_exported(output, fmt)
        rng = np.random.default_rng(0)
        parity = max(
            max_difference(
                predictor.model,
                exported,
                rng.standard_normal((batch, *config.shape)).astype(np.float32),
            )
            for batch in CHECK_BATCHES
        )
    sidecar = sidecar_document(predictor, fmt, checkpoint_path, parity)
    atomic_write_json(sidecar_path(output), sidecar)
    return sidecar


def sidecar_document(
    predictor: Any, fmt: str, checkpoint_path: str | os.PathLike, parity: float | None
) -> dict[str, Any]:
    """The JSON sidecar: what to feed the exported model and how to read its output."""
    from dataclasses import asdict

    config = predictor.feature_config
    n_mfcc, frames = config.shape
    return {
        "format": SIDECAR_FORMAT,
        "model_format": fmt,
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "shape": ["batch", n_mfcc, frames],
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch", len(predictor.class_names)],
            "meaning": "logits; softmax over the last axis gives class probabilities",
        },
        "class_names": list(predictor.class_names),
        "features": {**asdict(config), "normalisation": predictor.normalisation_mode},
        "normalisation": predictor.normalisation.to_dict() if predictor.normalisation else None,
        "note": predictor.note,
        "source_checkpoint": os.fspath(checkpoint_path),
        "parity": None
        if parity is None
        else {"max_abs_logit_difference": parity, "batches": list(CHECK_BATCHES)},
        "versions": {
            "torch": torch.__version__,
            "onnx_opset": ONNX_OPSET if fmt == "onnx" else None,
        },
    }


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = [
    "FORMATS",
    "export_checkpoint",
    "export_model",
    "load_exported",
    "max_difference",
    "require_onnx",
    "sidecar_path",
]
