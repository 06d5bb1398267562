"""``emodarts predict CHECKPOINT PATH...``: the emotion of new recordings.

A thin layer over :class:`emodarts_nni.inference.predict.Predictor` (identical results). Exit
status: 0 when every file was predicted; 1 when some files could not be read (they are
listed on stderr, the others are still predicted and written); 2 for bad input found
before any work (an unusable checkpoint, a folder without audio, an output that cannot
be written).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import EmodartsError

FORMATS = ("table", "csv", "jsonl")

#: At least this many files bring up the progress bar (unless --no-progress).
PROGRESS_FROM = 8


def format_predictions(results: list[dict[str, Any]], class_names: list[str], fmt: str) -> str:
    """``results`` of :meth:`Predictor.predict_files` as ``table``, ``csv`` or ``jsonl`` text."""
    if fmt == "jsonl":
        return "".join(
            json.dumps(
                {"path": r["path"], "label": r["label"], "probabilities": r["probabilities"]}
            )
            + "\n"
            for r in results
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["path", "label", *class_names])
        for r in results:
            writer.writerow(
                [r["path"], r["label"], *(repr(r["probabilities"][c]) for c in class_names)]
            )
        return out.getvalue()
    rows = [["path", "label", *class_names]] + [
        [r["path"], r["label"], *(f"{r['probabilities'][c]:.3f}" for c in class_names)]
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        + "\n"
        for row in rows
    )


def cmd_predict(args: argparse.Namespace) -> int:
    """``emodarts predict``: predict, write the chosen format, list the skipped files."""
    from emodarts_nni.common.files import atomic_write_text, check_output

    if args.batch_size < 1:
        raise EmodartsError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.output is not None:  # an output never replaces an input (checked before torch)
        check_output(args.output, "-o", [args.checkpoint, *args.paths])

    from emodarts_nni.inference.predict import FewRecordingsWarning, Predictor, find_audio_files

    paths = find_audio_files(args.paths)
    if args.output is not None:  # the audio files found in the given folders are inputs too
        check_output(args.output, "-o", paths)
    predictor = Predictor.from_checkpoint(args.checkpoint, batch_size=args.batch_size)
    skipped: list[tuple[str, str]] = []

    def skip(path: str, reason: str) -> None:
        skipped.append((path, reason))

    progress = not args.no_progress and len(paths) >= PROGRESS_FROM
    if args.same_speaker:  # the inputs' own statistics, each file's features computed once
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FewRecordingsWarning)
            results, _ = predictor.predict_speaker(
                paths, windows=args.windows, on_skip=skip, progress=progress
            )
        for warning in caught:  # too few recordings: one line; any other warning as usual
            if issubclass(warning.category, FewRecordingsWarning):
                print(f"emodarts: warning: --same-speaker: {warning.message}", file=sys.stderr)
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
    else:
        if predictor.note:
            print(f"emodarts: note: {predictor.note}", file=sys.stderr)
        results = predictor.predict_files(
            paths, windows=args.windows, on_skip=skip, progress=progress
        )
    text = format_predictions(results, predictor.class_names, args.format)
    if args.output is not None:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    for path, reason in skipped:
        print(f"emodarts: skipped {path}: {reason}", file=sys.stderr)
    if skipped:
        print(
            f"emodarts: predicted {len(results)} of {len(paths)} files; "
            f"{len(skipped)} skipped (listed above)",
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``emodarts predict``."""
    p = subparsers.add_parser(
        "predict",
        help="emotion + class probabilities of audio files with a trained checkpoint",
        description=(
            "Predict the emotion of audio files (or every audio file under a folder) with a "
            "trained checkpoint, through the training feature pipeline (sample rate, MFCC "
            "settings and normalisation statistics saved in the checkpoint). A model trained "
            "with per-speaker normalisation needs its speaker's statistics: with "
            "--same-speaker they are computed from the given recordings (all of one "
            "speaker; below a minimum number of recordings, documented in "
            "docs/using-a-model.md, a warning on stderr and the training statistics); "
            "otherwise the saved training statistics are used and a note on stderr says so."
        ),
        epilog=(
            "Exit status: 0 all files predicted; 1 some files could not be read (listed on "
            "stderr, the others are predicted and written); 2 bad checkpoint or arguments."
        ),
    )
    p.add_argument(
        "checkpoint", type=Path, metavar="CHECKPOINT", help="checkpoint.pt of a run folder"
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="audio files, or folders searched recursively for audio files",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (aligned, 3 decimals), csv (path,label,<class>...) or jsonl "
        '({"path", "label", "probabilities": {class: p}} per line); default: table',
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write here (atomically) instead of stdout: a new name or a regular file, "
        "never an input nor a file inside a run or study folder",
    )
    p.add_argument(
        "--windows",
        action="store_true",
        help="score a recording longer than the features' max_seconds by averaging the "
        "probabilities of consecutive max_seconds windows (weighted by their length); "
        "default: score its first max_seconds, as in the paper",
    )
    p.add_argument(
        "--same-speaker",
        action="store_true",
        help="all the recordings are of one speaker: normalise them with their own "
        "statistics, as training did for a model with features.normalisation: speaker "
        "(default: the training statistics saved in the checkpoint; with fewer recordings "
        "than the minimum in docs/using-a-model.md, those too, and a warning)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="files scored together (default: 32)")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help=f"no progress bar (shown on stderr from {PROGRESS_FROM} files on)",
    )
    p.set_defaults(func=cmd_predict)
