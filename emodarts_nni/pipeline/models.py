"""Where the retrained model comes from: a searched architecture or a hand-designed baseline.

Both are a :class:`ModelSource`: it builds the ``nn.Module`` for the fold's data, says how
``checkpoint.pt`` describes the model (so :func:`emodarts_nni.inference.checkpoint.load_checkpoint`
can rebuild it) and what provenance goes into ``metrics.json``. The stages never ask which
kind they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn

from emodarts_nni.pipeline.data import FoldData
from emodarts_nni.space.architecture import ArchitectureFile, freeze


class ModelSource(Protocol):
    """A model to retrain and evaluate under the protocol."""

    def build(self, data: FoldData) -> nn.Module:
        """A freshly initialised model for ``data``'s input shape and classes."""
        ...

    def checkpoint_description(self, data: FoldData) -> dict[str, Any]:
        """``architecture=`` or ``baseline=`` for :func:`~emodarts_nni.inference.checkpoint.save_checkpoint`."""
        ...

    def provenance(self) -> dict[str, Any]:
        """``search_seconds``, ``strategy`` and ``scope`` for ``metrics.json``."""
        ...


@dataclass(frozen=True)
class SearchedModel:
    """An architecture from ``architecture.json`` (searched, or given to ``emodarts retrain``)."""

    architecture: ArchitectureFile
    default_strategy: str

    def build(self, data: FoldData) -> nn.Module:
        """The frozen architecture (its space already records the data's shape)."""
        return freeze(self.architecture.space, self.architecture.architecture)

    def checkpoint_description(self, data: FoldData) -> dict[str, Any]:
        """The checkpoint stores the architecture file's space and choices."""
        return {"architecture": self.architecture, "baseline": None}

    def provenance(self) -> dict[str, Any]:
        """The search's time, strategy (``default_strategy`` when unrecorded) and scope."""
        return {
            "search_seconds": self.architecture.provenance.get("search_seconds"),
            "strategy": self.architecture.provenance.get("strategy", self.default_strategy),
            "scope": self.architecture.space.get("scope"),
        }


@dataclass(frozen=True)
class BaselineModel:
    """A hand-designed model of :mod:`emodarts_nni.training.baselines` (``cnn``, ``cnn_lstm``, ...)."""

    name: str

    def spec(self, data: FoldData) -> dict[str, Any]:
        """The :func:`~emodarts_nni.training.baselines.build_baseline` arguments for ``data``."""
        n_mfcc, frames = data.input_shape
        return {
            "name": self.name,
            "n_mfcc": n_mfcc,
            "frames": frames,
            "n_classes": len(data.class_names),
        }

    def build(self, data: FoldData) -> nn.Module:
        """The baseline sized to ``data``."""
        from emodarts_nni.training.baselines import build_baseline

        return build_baseline(**self.spec(data))

    def checkpoint_description(self, data: FoldData) -> dict[str, Any]:
        """The checkpoint stores the baseline's name and size."""
        return {"architecture": None, "baseline": self.spec(data)}

    def provenance(self) -> dict[str, Any]:
        """No search: zero search time, strategy ``baseline``, the model's name as scope."""
        return {"search_seconds": 0.0, "strategy": "baseline", "scope": self.name}
