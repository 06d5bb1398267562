"""A study's cells: the grid's cross product plus the controls, each with a stable id.

Every cell is one NNI trial and one run folder ``<study>/<cell id>``. The id names the arm
first, then the grid values that vary (``darts_fold-0_scope-emodarts``,
``random-arch-1_fold-0_scope-emodarts``, ``baseline-cnn_fold-0``, ``classical_fold-0``),
so it is the same on every expansion of the same study file (that is what resume relies on).

Arms (``docs/interface.md``): a strategy name, ``random-arch``, ``baseline:NAME``,
``classical``. Controls repeat per combination of the grid axes that are not about the
search: random architectures per value of every axis outside ``search.*`` (so per fold and
scope), baselines and the classical control per value of every axis outside ``search.*``
and ``space.*`` (they have no search space). Kinds and arms are named in
:mod:`emodarts_nni.study.arms`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.config.experiment import ExperimentConfig, load_config
from emodarts_nni.study.arms import (
    BASELINE_KIND,
    BASELINE_PREFIX,
    CLASSICAL_ARM,
    CLASSICAL_KIND,
    KINDS,
    RANDOM_ARM,
    RANDOM_KIND,
    SEARCH_KIND,
)
from emodarts_nni.study.config import Primary, StudyConfig

#: Offset of random-architecture sampling seeds, so sample r of seed s is ``s * 1000 + r + 1``.
_SAMPLE_STRIDE = 1000


@dataclass(frozen=True)
class Cell:
    """One trial of a study: which arm on which grid point, and its resolved config."""

    id: str
    kind: str
    arm: str
    axes: Mapping[str, Any]
    config: ExperimentConfig = field(compare=False, repr=False)
    index: int = 0  # the random architecture's number (0, 1, ...)

    @property
    def baseline(self) -> str | None:
        """The baseline's name for a baseline cell, else ``None``."""
        return self.arm[len(BASELINE_PREFIX) :] if self.kind == BASELINE_KIND else None

    @property
    def sample_seed(self) -> int:
        """Seed of a random architecture: the same across folds, so every fold retrains it."""
        return self.config.seed * _SAMPLE_STRIDE + self.index + 1

    @property
    def scope(self) -> str:
        """The search scope's name (``-`` for cells without a search space)."""
        if self.kind in (BASELINE_KIND, CLASSICAL_KIND):
            return "-"
        return Path(self.config.space.scope).stem

    def parameters(self) -> dict[str, Any]:
        """What NNI shows as the trial's hyper-parameters (and what the trial reads back)."""
        cfg = self.config
        return {
            "cell": self.id,
            "arm": self.arm,
            "corpus": cfg.corpus.kind,
            "fold": cfg.splits.fold,
            "scope": self.scope,
            "strategy": cfg.search.strategy if self.kind == SEARCH_KIND else self.arm,
            "seed": cfg.seed,
            **{key: _plain(value) for key, value in self.axes.items()},
        }


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _slug(value: Any) -> str:
    text = Path(value).stem if isinstance(value, str) and value.endswith(".yaml") else str(value)
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


def _labels(keys: list[str]) -> dict[str, str]:
    """Short axis names for ids: the last part of the dotted key, unless two axes share it."""
    leaves = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: leaf if leaves.count(leaf) == 1 else key.replace(".", "-")
        for key, leaf in zip(keys, leaves, strict=True)
    }


def _points(grid: Mapping[str, tuple[Any, ...]], keep: list[str]) -> list[dict[str, Any]]:
    axes = [key for key in grid if key in keep]
    return [
        dict(zip(axes, values, strict=True))
        for values in itertools.product(*(grid[a] for a in axes))
    ]


def _config(study: StudyConfig, point: Mapping[str, Any], cell_id: str) -> ExperimentConfig:
    try:
        return load_config(study.base, overrides={**study.overrides, **point})
    except ConfigError as exc:
        raise ConfigError(f"{study.source}: cell {cell_id}: {exc}") from None


def expand_cells(study: StudyConfig) -> list[Cell]:
    """Every cell of ``study`` in a stable order, each config validated (before any work).

    Raises :class:`ConfigError` naming the study file, the cell and the key when a grid
    value or override makes an invalid experiment config, or when two cells would share
    a run folder.
    """
    keys = list(study.grid)
    labels = _labels(keys)

    def cell_id(arm_slug: str, point: Mapping[str, Any]) -> str:
        parts = [
            f"{labels[key]}-{_slug(value)}"
            for key, value in point.items()
            if len(study.grid[key]) > 1 and key != "search.strategy"
        ]
        return "_".join([arm_slug, *parts])

    cells: list[Cell] = []
    for point in _points(study.grid, keys):
        named = point.get("search.strategy", study.overrides.get("search.strategy", "search"))
        probe = _config(study, point, cell_id(_slug(named), point))
        arm = probe.search.strategy
        cells.append(Cell(cell_id(arm, point), SEARCH_KIND, arm, point, probe))
    controls = study.controls
    no_search = [key for key in keys if not key.startswith("search.")]
    for point in _points(study.grid, no_search):
        for r in range(controls.random_architectures):
            cid = cell_id(f"{RANDOM_ARM}-{r}", point)
            cells.append(Cell(cid, RANDOM_KIND, RANDOM_ARM, point, _config(study, point, cid), r))
    no_space = [key for key in no_search if not key.startswith("space.")]
    for point in _points(study.grid, no_space):
        for name in controls.baselines:
            cid = cell_id(f"baseline-{name}", point)
            cells.append(
                Cell(cid, BASELINE_KIND, BASELINE_PREFIX + name, point, _config(study, point, cid))
            )
        if controls.classical:
            cid = cell_id(CLASSICAL_ARM, point)
            cells.append(
                Cell(cid, CLASSICAL_KIND, CLASSICAL_ARM, point, _config(study, point, cid))
            )
    seen: set[str] = set()
    for cell in cells:
        if cell.id in seen:
            raise ConfigError(f"{study.source}: two cells share the run folder {cell.id!r}")
        seen.add(cell.id)
    resolve_primary(study, cells)
    return cells


def _one(study: StudyConfig, key: str, named: str | None, found: Sequence[str], arm: str) -> str:
    """The one ``found`` value ``named`` (or the only one), else a one-line error on ``key``."""
    if named is not None:
        if named not in found:
            raise ConfigError(
                f"{study.source}: primary.{key} = {named!r}: {arm} has no cells there "
                f"({', '.join(found)})"
            )
        return named
    if len(found) > 1:
        raise ConfigError(
            f"{study.source}: primary.{key}: {arm} has cells in more than one {key} "
            f"({', '.join(found)}); name one"
        )
    return found[0]


def resolve_primary(study: StudyConfig, cells: Sequence[Cell]) -> Primary | None:
    """The study's primary comparison with its corpus and scope filled in from ``cells``.

    Raises :class:`ConfigError` on ``primary.arm`` when no searched cell has that arm (a
    strategy only the base config names), on ``primary.against`` when no cell has that
    arm, and on ``primary.scope`` / ``primary.corpus`` when they name nothing or are needed
    to choose.
    """
    primary = study.primary
    if primary is None:
        return None
    searched = [c for c in cells if c.kind == SEARCH_KIND and c.arm == primary.arm]
    if not searched:
        arms = sorted({c.arm for c in cells if c.kind == SEARCH_KIND})
        raise ConfigError(
            f"{study.source}: primary.arm = {primary.arm!r}: not a searched arm of this study "
            f"({', '.join(arms)})"
        )
    if not any(c.arm == primary.against for c in cells):
        raise ConfigError(
            f"{study.source}: primary.against = {primary.against!r}: not an arm of this study"
        )
    corpus = _one(
        study,
        "corpus",
        primary.corpus,
        list(dict.fromkeys(c.config.corpus.kind for c in searched)),
        primary.arm,
    )
    scope = _one(
        study,
        "scope",
        None if primary.scope is None else Path(primary.scope).stem,
        list(dict.fromkeys(c.scope for c in searched if c.config.corpus.kind == corpus)),
        primary.arm,
    )
    if primary.against_scope is not None:
        named = Path(primary.against_scope).stem
        found = list(
            dict.fromkeys(
                c.scope
                for c in cells
                if c.arm == primary.against and c.config.corpus.kind == corpus
            )
        )
        _one(study, "against_scope", named, found, primary.against)
        return dataclasses.replace(primary, scope=scope, corpus=corpus, against_scope=named)
    return dataclasses.replace(primary, scope=scope, corpus=corpus)


__all__ = [
    "BASELINE_PREFIX",
    "CLASSICAL_ARM",
    "KINDS",
    "RANDOM_ARM",
    "Cell",
    "expand_cells",
    "resolve_primary",
]
