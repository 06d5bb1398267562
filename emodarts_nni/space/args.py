"""The arguments of the emoDARTS space: names, defaults, rules, and how they resolve.

The one owner of these facts; :class:`~emodarts_nni.space.model.EmoDartsSpace` takes exactly
these arguments and the ``space`` section of an experiment config declares its fields from
them. Torch-free, so a config is checked before anything heavy is imported.

Precedence (lowest first): :data:`SPACE_DEFAULTS` < the scope's ``settings`` < the
caller's arguments (for a config: the keys the user wrote, then command-line overrides).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emodarts_nni.common.errors import ConfigError, suggest
from emodarts_nni.common.rules import INT_POS, PROBABILITY, Invalid, Number, show
from emodarts_nni.space.genotype import NORMAL_CELL, REDUCE_CELL, SEQ_CELL, reduction_positions
from emodarts_nni.space.scopes import Scope, load_scope

#: The ``build_space`` arguments a scope's ``settings`` or a caller may set, with defaults.
SPACE_DEFAULTS: dict[str, Any] = {
    "n_mfcc": 128,
    "frames": 128,
    "n_classes": 4,
    "init_channels": 8,
    "stem_multiplier": 3,
    "cnn_cells": 4,
    "cnn_nodes": 4,
    "seq_cells": 2,  # 0 = CNN only
    "seq_nodes": 2,
    "hidden": 128,
    "dropout": 0.3,
}
#: The rule each argument obeys on its own (see :func:`resolve_space_args` for the rest).
#: Caps on the counts that make a space's structure (the paper: 4 cells, 4 nodes): far
#: above any searchable space, and checked before sizing, which walks every node and cell
#: (``space.cnn_nodes: 100000`` used to take 49 s to be called too large).
MAX_CELLS = 64
MAX_NODES = 32
SPACE_RULES: dict[str, Any] = {
    **{key: INT_POS for key in SPACE_DEFAULTS},
    "n_classes": INT_POS,
    "cnn_cells": Number(integer=True, low=1, high=MAX_CELLS),
    "cnn_nodes": Number(integer=True, low=1, high=MAX_NODES),
    "seq_cells": Number(integer=True, low=0, high=MAX_CELLS),
    "seq_nodes": Number(integer=True, low=1, high=MAX_NODES),
    "dropout": PROBABILITY,
}


class SpaceArgumentError(ConfigError):
    """A space argument breaks its rule; ``key``, ``value`` and ``expected`` name it so
    the config layer can point at the dotted key of the file."""

    def __init__(self, source: str, key: str, value: Any, expected: str) -> None:
        super().__init__(f"{source}: space argument {key!r} = {show(value)}: expected {expected}")
        self.key, self.value, self.expected = key, value, expected


def _apply(args: dict[str, Any], values: Mapping[str, Any], source: str) -> None:
    for key, value in values.items():
        if key not in SPACE_DEFAULTS:
            raise ConfigError(
                f"{source}: unknown space argument {key!r}{suggest(str(key), list(SPACE_DEFAULTS))}"
            )
        rule = SPACE_RULES[key]
        try:
            args[key] = rule.convert(value)
        except Invalid:
            raise SpaceArgumentError(source, key, value, rule.expected) from None


def resolve_space_args(scope: str | Scope, **overrides: Any) -> dict[str, Any]:
    """The full, validated ``EmoDartsSpace`` arguments for ``scope`` plus ``overrides``.

    Precedence: :data:`SPACE_DEFAULTS` < the scope's ``settings`` < ``overrides``. Unknown
    keys and impossible values raise :class:`ConfigError` naming the key
    (:class:`SpaceArgumentError` for a bad value). The result also holds ``cnn_ops``,
    ``seq_ops``, ``readouts`` and ``scope`` (the scope's name), as stored in an
    architecture JSON.
    """
    resolved = load_scope(scope)
    args: dict[str, Any] = dict(SPACE_DEFAULTS)
    _apply(args, resolved.settings, f"scope {resolved.name!r} settings")
    _apply(args, overrides, "build_space")
    if not resolved.has_seq_ops:
        # A scope without SeqNN ops is CNN-only (paper Table 3), whatever seq_cells says.
        args["seq_cells"] = 0
    if args["seq_cells"] > 0 and args["hidden"] % 2:
        # bidirectional RNN/LSTM ops give hidden/2 units to each direction (ops.py)
        raise SpaceArgumentError(
            "build_space", "hidden", args["hidden"], "an even number (bidirectional ops)"
        )
    args["cnn_ops"] = list(resolved.cnn_ops)
    args["seq_ops"] = list(resolved.seq_ops) if args["seq_cells"] > 0 else []
    args["readouts"] = list(resolved.readouts)
    args["scope"] = resolved.name
    return args


def partial_width_problem(width: int, k: int, *, bidirectional: bool = False) -> str | None:
    """Why an edge ``width`` wide cannot run 1/``k`` of it through its ops (PC-DARTS), or None.

    The width must split into ``k`` equal parts (the channel shuffle interleaves ``k``
    groups); a SeqNN part must stay even (``bidirectional``: hidden/2 units per direction).
    """
    if width % k:
        return f"width {width} does not split into {k} equal parts"
    if bidirectional and (width // k) % 2:
        return f"hidden {width} / {k} = {width // k} is odd (bidirectional SeqNN ops need it even)"
    return None


def edge_widths(args: Mapping[str, Any]) -> dict[str, int]:
    """The width of the edges of each cell kind of a space: CNN channels, SeqNN features."""
    widths: dict[str, int] = {}
    channels, reductions = args["init_channels"], reduction_positions(args["cnn_cells"])
    for index in range(args["cnn_cells"]):
        if index in reductions:
            channels *= 2
        widths.setdefault(REDUCE_CELL if index in reductions else NORMAL_CELL, channels)
    if args["seq_cells"] > 0:
        widths[SEQ_CELL] = args["hidden"]
    return widths


def check_partial_channels(args: Mapping[str, Any], k: int, key: str) -> None:
    """Refuse a PC-DARTS ``k`` that does not split every edge of the space (:class:`ConfigError`
    naming ``key``); the widths come from the space arguments ``args`` alone."""
    for cell, width in edge_widths(args).items():
        problem = partial_width_problem(width, k, bidirectional=cell == SEQ_CELL)
        if problem:
            raise ConfigError(
                f"{key} = {show(k)}: the {cell!r} cells' {problem}; "
                "choose a K that divides space.init_channels and, with SeqNN cells, hidden / 2"
            )


__all__ = [
    "SPACE_DEFAULTS",
    "SPACE_RULES",
    "SpaceArgumentError",
    "check_partial_channels",
    "edge_widths",
    "partial_width_problem",
    "resolve_space_args",
]
