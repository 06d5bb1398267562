"""``emodarts plan CONFIG``: parameters and peak memory of a run, before anything is built.

A thin layer over :mod:`emodarts_nni.pipeline.plan` (which also holds the guard
``emodarts run`` applies); no corpus is needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emodarts_nni._compat import forwarding


def cmd_plan(args: argparse.Namespace) -> int:
    """``emodarts plan CONFIG``: print the plan (``--json``: one JSON object)."""
    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.config.overrides import command_line_overrides
    from emodarts_nni.pipeline.plan import NO_CORPUS, plan, render

    cfg = load_config(args.config, {**NO_CORPUS, **command_line_overrides(args.set, vars(args))})
    result = plan(cfg, str(args.config))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``emodarts plan``."""
    p = subparsers.add_parser(
        "plan", help="parameters and peak memory of a run, before anything is built"
    )
    p.add_argument("config", type=Path, help="experiment YAML (no corpus needed)")
    p.add_argument("--strategy", help="search strategy (darts, enas, random, ...)")
    p.add_argument("--scope", help="search scope name or scope YAML")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, as for `emodarts run` (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_plan)


# Release 0.1's emodarts_nni.cli.plan.guard_run (and the rest of the plan), for one release.
__getattr__ = forwarding(
    "emodarts_nni.cli.plan", ("REFERENCE_GPUS", "guard_run", "plan", "render", "suggestions")
)
