"""Entry point of the ``emodarts`` command.

Each command group lives in its own module exposing ``register(subparsers)``, which adds
its sub-parsers and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit status). User errors (:class:`~emodarts_nni.common.errors.EmodartsError`) are
printed on one line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import no_space_error

#: Modules that contribute sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "emodarts_nni.cli.corpus",
    "emodarts_nni.cli.features",
    "emodarts_nni.cli.experiment",
    "emodarts_nni.cli.plan",
    "emodarts_nni.cli.report",
    "emodarts_nni.cli.study",
    "emodarts_nni.cli.predict",
    "emodarts_nni.cli.export",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full ``emodarts`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="emodarts",
        description="emoDARTS on NNI: joint CNN + SeqNN architecture search for speech emotion recognition.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command group not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``emodarts`` command line; returns the exit status."""
    # lightning_fabric (pytorch-lightning 2.0.9) declares a pkg_resources namespace on import.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except EmodartsError as exc:
        print(f"emodarts: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # a write outside the atomic writers (which say so themselves) found the disk full
        # (an open file's write names no file: then the command's output folder, if it has one)
        out = getattr(args, "out", None) or getattr(args, "output", None)
        if exc.filename:
            where = os.path.dirname(os.path.abspath(exc.filename))
        else:
            where = os.path.abspath(out) if out else "the disk"
        print(f"emodarts: error: {no_space_error(where)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emodarts: interrupted; finished work is kept, rerun with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
