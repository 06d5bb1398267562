"""``emodarts corpus``: read corpora into manifests, synthesise the default corpus, make folds.

A thin layer over :func:`emodarts_nni.data.corpora.build_manifest`,
:func:`emodarts_nni.data.synth.synthesize_corpus` and
:func:`emodarts_nni.data.splits.make_folds`.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from emodarts_nni.common.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``corpus`` command group (``manifest``, ``synth``, ``splits``)."""
    from emodarts_nni.data.corpora import CORPUS_READERS
    from emodarts_nni.data.splits import PROTOCOLS

    corpus = subparsers.add_parser(
        "corpus", help="corpus manifests, the synthetic default corpus, and folds"
    )
    commands = corpus.add_subparsers(dest="corpus_command", metavar="COMMAND")
    corpus.set_defaults(func=lambda _args: _help(corpus))

    manifest = commands.add_parser(
        "manifest",
        help="read a corpus release folder into a manifest CSV",
        description="Read a corpus from its original release layout and write a manifest "
        "(path,label,speaker,session,duration[,split]). Kinds: " + ", ".join(CORPUS_READERS),
    )
    manifest.add_argument("kind", metavar="KIND", help=", ".join(CORPUS_READERS))
    manifest.add_argument("root", metavar="ROOT", help="release folder (csv: the CSV file)")
    manifest.add_argument(
        "-o", "--output", required=True, metavar="MANIFEST.csv", help="manifest CSV to write"
    )
    manifest.add_argument(
        "--all-classes",
        action="store_true",
        help="keep every class, not only neutral/happy/sad/angry",
    )
    manifest.add_argument(
        "--option",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="reader option, e.g. improvised_only=false, merge_excited=true, conditions=P,S",
    )
    manifest.set_defaults(func=run_manifest)

    synth = commands.add_parser(
        "synth",
        help="write the embedded synthetic default corpus and its manifest",
    )
    synth.add_argument("out", metavar="OUT", help="output folder")
    synth.add_argument(
        "--seed", type=int, default=0, help="corpus seed: another seed, another corpus"
    )
    synth.add_argument("--speakers", type=int, default=10, help="number of speakers")
    synth.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="number of sessions (default: two speakers per session, one if --speakers is odd)",
    )
    synth.add_argument("--per-class", type=int, default=20, help="utterances per class per speaker")
    synth.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: all cores)"
    )
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth.set_defaults(func=run_synth)

    splits = commands.add_parser(
        "splits",
        help="speaker-independent folds of a manifest",
        description="Write fold,part,path,speaker,session,label rows for every fold "
        "(parts: search, train, validation, test) and print per-fold counts.",
    )
    splits.add_argument("manifest", metavar="MANIFEST", help="manifest CSV")
    splits.add_argument(
        "-o", "--output", required=True, metavar="SPLITS.csv", help="splits CSV to write"
    )
    splits.add_argument("--protocol", default="auto", help=", ".join(PROTOCOLS))
    splits.add_argument(
        "--folds",
        type=int,
        default=None,
        metavar="N",
        help="number of folds (default: what the protocol and corpus give)",
    )
    splits.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    splits.add_argument(
        "--search-fraction",
        type=float,
        default=0.7,
        help="share of the training part used for search (the rest retrains)",
    )
    splits.add_argument(
        "--validation-fraction",
        type=float,
        default=0.15,
        help="share of the training speakers kept for validation (0: none)",
    )
    splits.set_defaults(func=run_splits)


def parse_option(text: str) -> tuple[str, object]:
    """``key=value`` → ``(key, typed value)``: true/false, ints, floats, comma lists, text."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise DataError(f"--option {text!r}: expected KEY=VALUE")
    if "," in value:
        return key, tuple(_scalar(v) for v in value.split(",") if v.strip())
    return key, _scalar(value)


def _scalar(value: str) -> object:
    value = value.strip()
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def run_manifest(args: argparse.Namespace) -> int:
    """Handler of ``emodarts corpus manifest``."""
    from emodarts_nni.common.files import check_output
    from emodarts_nni.data.corpora import build_manifest
    from emodarts_nni.data.manifest import write_manifest

    options = dict(parse_option(o) for o in args.option)
    check_output(args.output, "-o", [args.root])  # e.g. the csv reader's own CSV
    result = build_manifest(args.kind, args.root, all_classes=args.all_classes, **options)
    print(result.summary())
    if not result.utterances:
        raise DataError(f"no usable utterances under {args.root}; nothing written")
    path = write_manifest(result.utterances, args.output)
    print(f"wrote {path} ({len(result.utterances)} utterances)")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    """Handler of ``emodarts corpus synth``."""
    from emodarts_nni.data.manifest import read_manifest
    from emodarts_nni.data.synth import synthesize_corpus

    sessions = args.sessions
    if sessions is None:  # IEMOCAP-like: one F and one M speaker per session
        sessions = args.speakers // 2 if args.speakers % 2 == 0 else args.speakers
    for flag, value in (("--speakers", args.speakers), ("--sessions", sessions)):
        if value < 1:
            raise DataError(f"{flag} must be at least 1, got {value}")
    path = synthesize_corpus(
        Path(args.out),
        seed=args.seed,
        n_speakers=args.speakers,
        n_sessions=sessions,
        utterances_per_class_per_speaker=args.per_class,
        workers=args.workers,
        progress=not args.no_progress,
    )
    utterances = read_manifest(path)
    per_class = Counter(u.label for u in utterances)
    print(
        f"wrote {path}: {len(utterances)} utterances, "
        f"{len({u.speaker for u in utterances})} speakers, "
        f"{len({u.session for u in utterances if u.session})} sessions; "
        + ", ".join(f"{label} {n}" for label, n in sorted(per_class.items()))
    )
    return 0


def run_splits(args: argparse.Namespace) -> int:
    """Handler of ``emodarts corpus splits``."""
    from emodarts_nni.common.files import check_output
    from emodarts_nni.data.manifest import read_manifest
    from emodarts_nni.data.splits import make_folds, split_summary, write_splits

    check_output(args.output, "-o", [args.manifest])
    utterances = read_manifest(args.manifest)
    folds = make_folds(
        utterances,
        protocol=args.protocol,
        n_folds=args.folds,
        seed=args.seed,
        search_fraction=args.search_fraction,
        validation_fraction=args.validation_fraction,
    )
    for fold in folds:
        print(split_summary(fold, utterances))
    path = write_splits(folds, utterances, args.output)
    print(f"wrote {path} ({len(folds)} folds, protocol {folds[0].protocol})")
    return 0


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


__all__ = ["parse_option", "register", "run_manifest", "run_splits", "run_synth"]
