"""``emodarts study STUDY.yaml [--out DIR] [--resume] [--port P] [--no-webui]``.

A thin layer over :func:`emodarts_nni.study.runner.run_study`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` command."""
    parser = subparsers.add_parser(
        "study",
        help="a grid of folds x scopes x strategies x seeds, with controls, as one NNI experiment",
        description="Run every cell of STUDY.yaml (its base experiment config crossed with its "
        "grid, plus random-architecture, baseline and classical controls per fold) as the "
        "trials of one NNI experiment, each in its own run folder under the study folder, "
        "then write folds.csv, report.csv, report.md and pictures. --resume re-runs only the "
        "cells without metrics.json.",
    )
    parser.add_argument(
        "study", metavar="STUDY.yaml", type=Path, help="study file (see experiments/)"
    )
    parser.add_argument("--out", type=Path, default=None, help="study folder")
    parser.add_argument("--resume", action="store_true", help="continue the study in --out")
    parser.add_argument("--port", type=int, default=8080, help="NNI web UI port (127.0.0.1)")
    parser.add_argument(
        "--no-webui", action="store_true", help="run the cells in-process, one after another"
    )
    parser.set_defaults(func=run_study_command)


def run_study_command(args: argparse.Namespace) -> int:
    """Run the study, print where the report went; status 1 when a cell did not finish.

    Ctrl-C and SIGTERM stop NNI's manager and every running trial (status 130); the
    finished cells are kept and ``--resume`` runs the others.
    """
    from emodarts_nni.nni_runtime import terminate_as_interrupt
    from emodarts_nni.study.runner import StudyInterrupted, run_study

    _check_placement(args)
    try:
        with terminate_as_interrupt():
            result = run_study(
                args.study,
                out=args.out,
                resume=args.resume,
                port=args.port,
                webui=not args.no_webui,
            )
    except StudyInterrupted as stop:
        print(
            f"interrupted; finished cells are kept. Continue with: emodarts study {args.study} "
            f"--out {stop.study_dir} --resume",
            file=sys.stderr,
        )
        return 130
    from emodarts_nni.study.report import console_summary

    for line in console_summary(result.study_dir):
        print(line)
    print(f"\nreport: {result.report['report']}")
    print(f"tables: {result.report['folds']}, {result.report['report_csv']}")
    if result.unfinished:
        print(
            f"{len(result.unfinished)} cell(s) did not finish ({', '.join(result.unfinished[:5])}"
            f"{', ...' if len(result.unfinished) > 5 else ''}); continue with: emodarts study "
            f"{args.study} --out {result.study_dir} --resume",
            file=sys.stderr,
        )
        return 1
    return 0


def _check_placement(args: argparse.Namespace) -> None:
    """Refuse, before any work, a study above its size caps, or a ``training_service`` the
    study would fail on or ignore: a ``max_trial_duration`` NNI cannot read, or remote machines with ``--no-webui`` (which
    would silently run every cell here instead)."""
    from emodarts_nni.common.errors import ConfigError
    from emodarts_nni.study.config import load_study
    from emodarts_nni.study.service import check_max_trial_duration, check_study_size

    study = load_study(args.study)
    check_study_size(study)
    check_max_trial_duration(study.training_service, source=study.source)
    if args.no_webui and study.training_service.platform == "remote":
        raise ConfigError(
            f"{study.source}: training_service.platform = 'remote' runs the cells through "
            "NNI's manager on the SSH machines; --no-webui would run them on this machine "
            "instead: drop --no-webui (or use platform: local)"
        )
