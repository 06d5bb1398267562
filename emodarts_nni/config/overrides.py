"""Overrides from a command line: ``--set KEY=VALUE`` and the options that stand for a key.

A ``--set`` value is read by the same YAML loader as a config file
(:func:`~emodarts_nni.common.yaml_loader.parse_yaml`), so ``--set search.arch_lr=3e-4``
means what ``arch_lr: 3e-4`` means in the file, and a value the file would refuse (``inf``)
is refused with the same message. Light: no torch, no NNI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.common.yaml_loader import parse_yaml
from emodarts_nni.config.experiment import ExperimentConfig, load_config

#: Command-line options that are shorthands for one config key (``--fold 2`` is
#: ``--set splits.fold=2``); they win over ``--set``.
SHORTHANDS = {
    "strategy": "search.strategy",
    "scope": "space.scope",
    "fold": "splits.fold",
    "port": "webui.port",
}


def parse_value(text: str, source: str = "--set") -> Any:
    """``text`` read as a YAML value, the way a config file's value is read (``3e-4`` and
    ``.5`` are numbers, ``null`` is None); text that is not valid YAML is kept as it is
    (``--set name=@night``)."""
    try:
        return parse_yaml(text, source)
    except ConfigError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--set``) as dotted overrides for :func:`load_config`; a
    later item overrides an earlier one. Raises :class:`ConfigError` for an item with no
    ``=``."""
    overrides: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        overrides[key.strip()] = parse_value(value, f"--set {key.strip()}")
    return overrides


def command_line_overrides(
    sets: Iterable[str], options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The overrides a command line asks for: each ``--set`` item (:func:`parse_overrides`),
    then the shorthand options in ``options`` (e.g. ``vars(args)``: :data:`SHORTHANDS`, and
    ``no_webui`` for ``webui.enabled: false``); an option that is None was not given."""
    overrides = parse_overrides(sets)
    options = options or {}
    for option, key in SHORTHANDS.items():
        if options.get(option) is not None:
            overrides[key] = options[option]
    if options.get("no_webui"):
        overrides["webui.enabled"] = False
    return overrides


def load_config_with(
    path: str | os.PathLike, sets: Iterable[str] = (), options: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    """:func:`load_config` of ``path`` with a command line's overrides
    (:func:`command_line_overrides`): what ``emodarts run``, ``plan`` and the other commands
    that take a config load."""
    return load_config(path, command_line_overrides(sets, options))


__all__ = [
    "SHORTHANDS",
    "command_line_overrides",
    "load_config_with",
    "parse_overrides",
    "parse_value",
]
