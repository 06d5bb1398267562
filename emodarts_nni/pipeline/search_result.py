"""What every search strategy produces, and the space it searches sized to the fold's data.

A leaf module: the one-shot search (:mod:`emodarts_nni.pipeline.search`) and the multi-trial
search (:mod:`emodarts_nni.pipeline.multitrial`) both import it, neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emodarts_nni.config.experiment import ExperimentConfig
from emodarts_nni.pipeline.data import FoldData
from emodarts_nni.space.model import resolve_space_args


@dataclass
class SearchResult:
    """What a search produced."""

    space: dict[str, Any]
    architecture: dict[str, Any]
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def space_arguments(cfg: ExperimentConfig, data: FoldData) -> dict[str, Any]:
    """The resolved ``build_space`` arguments: the config's space sized to the data."""
    n_mfcc, frames = data.input_shape
    return resolve_space_args(
        cfg.space.scope,
        **cfg.space.build_kwargs(),
        n_mfcc=n_mfcc,
        frames=frames,
        n_classes=len(data.class_names),
    )
