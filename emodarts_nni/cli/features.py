"""``emodarts features``: extract and cache the MFCC features of a manifest.

A thin layer over :func:`emodarts_nni.data.features.extract_features`; prints counts per
class and per speaker, the skip summary and where the cache lives.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.files import writable_folder_problem
from emodarts_nni.data.manifest import Utterance

#: How many skipped paths are listed per reason before "... and N more".
_SHOWN_SKIPS = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``features`` command."""
    from emodarts_nni.data.features import NORMALISATIONS, FeatureConfig

    defaults = FeatureConfig()
    parser = subparsers.add_parser(
        "features",
        help="extract and cache the MFCC features of a manifest",
        description="Extract MFCC features (the paper's defaults: 128 MFCCs of the first "
        "8 s, 128 x 512 frames max-pooled to 128 x 128) for every utterance of MANIFEST and "
        "cache them; unreadable, empty and silent files are skipped and counted.",
    )
    parser.add_argument("manifest", metavar="MANIFEST", help="manifest CSV")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="cache root (default: $XDG_CACHE_HOME/emodarts-nni or ~/.cache/emodarts-nni)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N", help="processes (default: all cores)"
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=defaults.sample_rate,
        metavar="HZ",
        help="audio is resampled to this rate (default: %(default)s)",
    )
    parser.add_argument(
        "--n-mfcc",
        type=int,
        default=defaults.n_mfcc,
        metavar="N",
        help="MFCC coefficients (feature rows) (default: %(default)s)",
    )
    parser.add_argument(
        "--n-mels",
        type=int,
        default=defaults.n_mels,
        metavar="N",
        help="mel bands (at least --n-mfcc) (default: %(default)s)",
    )
    parser.add_argument(
        "--n-fft",
        type=int,
        default=defaults.n_fft,
        metavar="N",
        help="FFT window in samples (default: %(default)s)",
    )
    parser.add_argument(
        "--hop-length",
        type=int,
        default=defaults.hop_length,
        metavar="N",
        help="hop between frames in samples (default: %(default)s)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=defaults.max_seconds,
        metavar="S",
        help="audio is padded or cut to this length (default: %(default)s)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=defaults.frames,
        metavar="N",
        help="frames kept after padding (default: %(default)s)",
    )
    parser.add_argument(
        "--pooled-frames",
        type=int,
        default=defaults.pooled_frames,
        metavar="N",
        help="frames after max-pooling over time (default: %(default)s)",
    )
    parser.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default=defaults.normalisation,
        help="none, utterance (each utterance z-scored) or train (statistics of the training speakers, applied later; stored raw) (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run_features)


def run_features(args: argparse.Namespace) -> int:
    """Handler of ``emodarts features``."""
    from emodarts_nni.data.features import FeatureConfig, extract_features
    from emodarts_nni.data.manifest import class_names, read_manifest

    if args.workers is not None and args.workers < 1:
        raise DataError(f"--workers must be at least 1, got {args.workers}")
    problem = writable_folder_problem(args.cache_dir) if args.cache_dir is not None else None
    if problem is not None:
        raise DataError(f"--cache-dir {args.cache_dir}: {problem}")
    config = FeatureConfig(
        sample_rate=args.sample_rate,
        n_mfcc=args.n_mfcc,
        n_mels=args.n_mels,
        n_fft=args.n_fft,
        hop_length=args.hop_length,
        max_seconds=args.max_seconds,
        frames=args.frames,
        pooled_frames=args.pooled_frames,
        normalisation=args.normalisation,
    )
    utterances = read_manifest(args.manifest)
    if not utterances:
        raise DataError(f"{args.manifest}: the manifest has no utterances")
    result = extract_features(
        utterances,
        config,
        cache_dir=args.cache_dir,
        workers=args.workers,
        progress=not args.no_progress,
    )
    # extract_features has already printed the one-line skip summary (stderr).
    kept = result.utterances
    n, c, t = result.features.shape
    print(f"features: {n} of {len(utterances)} utterances kept -> {n} x {c} x {t} float32")
    print(_table(kept, class_names(kept) if kept else ()))
    for reason, paths in sorted(result.skipped_paths.items()):
        shown = ", ".join(paths[:_SHOWN_SKIPS])
        more = f" ... and {len(paths) - _SHOWN_SKIPS} more" if len(paths) > _SHOWN_SKIPS else ""
        print(f"skipped, {reason} ({len(paths)}): {shown}{more}")
    for reason, paths in sorted(result.warned.items()):
        shown = ", ".join(paths[:_SHOWN_SKIPS])
        more = f" ... and {len(paths) - _SHOWN_SKIPS} more" if len(paths) > _SHOWN_SKIPS else ""
        print(f"kept, {reason} ({len(paths)}): {shown}{more}")
    print(f"cache: {result.cache_dir}")
    if not kept:
        raise DataError(f"{args.manifest}: no usable audio; every utterance was skipped")
    return 0


def _table(utterances: Sequence[Utterance], classes: Sequence[str]) -> str:
    """Counts per speaker (rows) and class (columns), with totals."""
    per_speaker: dict[str, Counter[str]] = {}
    for u in utterances:
        per_speaker.setdefault(u.speaker, Counter())[u.label] += 1
    header = ["speaker", *classes, "total"]
    rows = [
        [speaker, *(str(counts[c]) for c in classes), str(sum(counts.values()))]
        for speaker, counts in sorted(per_speaker.items())
    ]
    totals = Counter(u.label for u in utterances)
    rows.append(["total", *(str(totals[c]) for c in classes), str(len(utterances))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    return "\n".join(lines)


__all__ = ["register", "run_features"]
