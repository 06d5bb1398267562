"""``emodarts export CHECKPOINT --format onnx|torchscript -o FILE``: a deployable model.

A thin layer over :func:`emodarts_nni.inference.export.export_checkpoint`; the JSON sidecar goes
beside ``FILE`` as ``FILE.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emodarts_nni.inference.formats import FORMATS  # torch-free: --help does not load torch


def cmd_export(args: argparse.Namespace) -> int:
    """``emodarts export``: check the output, export, print what was written."""
    from emodarts_nni.common.files import check_output
    from emodarts_nni.inference.formats import sidecar_path

    # Both files it writes, before torch: neither may replace an input or a run's file.
    check_output(args.output, "-o", [args.checkpoint])
    check_output(sidecar_path(args.output), f"-o {args.output}: its sidecar", [args.checkpoint])
    from emodarts_nni.inference.export import export_checkpoint

    sidecar = export_checkpoint(args.checkpoint, args.format, args.output)
    shape = " × ".join(str(d) for d in sidecar["input"]["shape"])
    print(f"wrote {args.output} ({args.format}; input {sidecar['input']['name']} {shape} float32)")
    print(f"wrote {sidecar_path(args.output)} (classes, feature settings, normalisation)")
    if sidecar["parity"] is not None:
        diff = sidecar["parity"]["max_abs_logit_difference"]
        print(f"checked: largest logit difference to PyTorch {diff:.2e}")
    else:
        print("not checked: install onnxruntime (the [export] extra) to compare with PyTorch")
    if sidecar["note"]:
        print(f"note: {sidecar['note']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``emodarts export``."""
    p = subparsers.add_parser(
        "export",
        help="write a checkpoint's model as ONNX or TorchScript, with a JSON sidecar",
        description=(
            "Export a trained checkpoint's model: one float32 input 'features' of shape "
            "(batch, n_mfcc, frames) with a dynamic batch axis, 'logits' out. FILE.json "
            "beside it holds the class names, the feature settings and the normalisation "
            "statistics to apply before the model. ONNX needs the [export] extra "
            "(pip install 'emodarts-nni[export]': onnx, and onnxruntime for the check)."
        ),
    )
    p.add_argument(
        "checkpoint", type=Path, metavar="CHECKPOINT", help="checkpoint.pt of a run folder"
    )
    p.add_argument("--format", choices=FORMATS, required=True, help="onnx or torchscript")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="FILE",
        help="file to write; the sidecar goes to FILE.json",
    )
    p.set_defaults(func=cmd_export)
