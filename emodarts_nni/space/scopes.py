"""Search scopes: which ops of :data:`~emodarts_nni.space.ops.CNN_OPS` / :data:`SEQ_OPS` a search
may use, and optionally cell/node counts. A scope is a small YAML file in ``search_spaces/``
(or anywhere, given by path)::

    name: lstm_only
    description: ...
    cnn_ops: [max_pool_3x3, ..., none]
    seq_ops: [lstm_1, lstm_2, lstm_3, lstm_4, skip_connect, none]
    readouts: [mean, stats]         # optional: readout candidates (default [mean], the paper's)
    settings: {seq_cells: 2}        # optional: defaults for build_space arguments

One readout is a fixed readout; several are an NNI ``LayerChoice`` every strategy searches.

An unknown op or key is a :class:`~emodarts_nni.common.errors.ConfigError` naming the file and
listing the valid names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emodarts_nni.common.errors import ConfigError, suggest
from emodarts_nni.common.shipped import SCOPES, shipped_folder, shipped_names
from emodarts_nni.common.yaml_loader import parse_yaml, read_yaml_text
from emodarts_nni.space.op_names import (
    CNN_OP_NAMES,
    DEFAULT_READOUTS,
    NONE_OP,
    READOUT_NAMES,
    SEQ_OP_NAMES,
)

#: Folder of the scopes shipped with the project (``search_spaces/`` at the repo root,
#: package data in a wheel; see :mod:`emodarts_nni.common.shipped`).
SCOPE_DIR = shipped_folder(SCOPES)

#: The scope of the paper's emoDARTS (every op of both tables): the default everywhere.
DEFAULT_SCOPE = "emodarts"

_SCOPE_KEYS = ("name", "description", "cnn_ops", "seq_ops", "readouts", "settings")


@dataclass(frozen=True)
class Scope:
    """The op names a search may use, plus default space settings."""

    name: str
    cnn_ops: tuple[str, ...]
    seq_ops: tuple[str, ...]
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    readouts: tuple[str, ...] = DEFAULT_READOUTS

    @property
    def has_seq_ops(self) -> bool:
        """Whether the SeqNN may hold any op (a scope without one is CNN-only)."""
        return any(op != NONE_OP for op in self.seq_ops)


def available_scopes() -> list[str]:
    """Names of the scopes shipped in ``search_spaces/``."""
    return shipped_names(SCOPES)


def _scope_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"scope file not found: {path}")
        return path
    path = SCOPE_DIR / f"{text}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown scope {text!r}{suggest(text, available_scopes())}")
    return path


def _op_list(
    data: Mapping[str, Any], key: str, table: Any, source: str, what: str | None = None
) -> tuple:
    ops = data.get(key) or []
    what = what or f"{key[:-4]} op"
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise ConfigError(f"{source}: {key} must be a list of {what} names")
    for op in ops:
        if op not in table:
            raise ConfigError(f"{source}: unknown {what} {op!r}{suggest(op, list(table))}")
    if len(set(ops)) != len(ops):
        raise ConfigError(f"{source}: {key} lists an op twice")
    return tuple(ops)


def scope_from_dict(data: Mapping[str, Any], source: str = "<scope>") -> Scope:
    """Validate a scope mapping (as read from YAML) into a :class:`Scope`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a scope must be a mapping with keys {', '.join(_SCOPE_KEYS)}")
    for key in data:
        if key not in _SCOPE_KEYS:
            raise ConfigError(
                f"{source}: unknown scope key {key!r}{suggest(str(key), _SCOPE_KEYS)}"
            )
    cnn_ops = _op_list(data, "cnn_ops", CNN_OP_NAMES, source)
    seq_ops = _op_list(data, "seq_ops", SEQ_OP_NAMES, source)
    if not [op for op in cnn_ops if op != NONE_OP]:
        raise ConfigError(f"{source}: cnn_ops needs at least one op other than {NONE_OP!r}")
    readouts = (
        _op_list(data, "readouts", READOUT_NAMES, source, "readout")
        if data.get("readouts") is not None
        else DEFAULT_READOUTS
    )
    if not readouts:
        raise ConfigError(f"{source}: readouts needs at least one of {', '.join(READOUT_NAMES)}")
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{source}: settings must be a mapping")
    return Scope(
        name=str(data.get("name") or Path(source).stem),
        cnn_ops=cnn_ops,
        seq_ops=seq_ops,
        description=str(data.get("description") or ""),
        settings=dict(settings),
        readouts=readouts,
    )


def load_scope(name_or_path: str | Path | Scope) -> Scope:
    """Load a scope by name (``"emodarts"``, ``"lstm_only"``, ...) or from a YAML path."""
    if isinstance(name_or_path, Scope):
        return name_or_path
    path = _scope_path(name_or_path)
    try:
        data = parse_yaml(read_yaml_text(path, "scope file"), str(path))  # bounded safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return scope_from_dict(data, source=str(path))
