"""Stage 2 — architecture search on the fold's *search* part, with any NNI strategy.

One-shot strategies (DARTS, GumbelDARTS, Proxyless, ENAS, RandomOneShot) train the
supernet in-process: the search part is split into two class-stratified halves, one for
the weights and one for the architecture (DARTS's bi-level data). Multi-trial strategies
(Random, RegularizedEvolution) run each sampled architecture as an NNI trial that trains
it briefly on one half and reports UA on the other (see :mod:`emodarts_nni.pipeline.trial`).
Both end in the same exported architecture dict.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from emodarts_nni.config import ExperimentConfig
from emodarts_nni.pipeline.data import FoldData, stratified_halves
from emodarts_nni.space import resolve_space_args, space_from_args
from emodarts_nni.strategies import is_oneshot, strategy_from_config
from emodarts_nni.training import EpochRecorder, SerModule, make_loader, make_trainer

log = logging.getLogger("emodarts")


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


def run_oneshot_search(
    cfg: ExperimentConfig,
    data: FoldData,
    run_dir: Path,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search with a one-shot strategy on the fold's search part (in-process)."""
    from nni.nas.evaluator.pytorch import Lightning

    from emodarts_nni.nni_runtime import run_search as nas_search

    torch.manual_seed(cfg.seed)
    space_args = space_arguments(cfg, data)
    x, y = data.x["search"], data.y["search"]
    weights_rows, arch_rows = stratified_halves(y, cfg.seed)
    history: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)

    module = SerModule(
        lr=cfg.search.lr,
        lr_min=cfg.search.lr_min,
        momentum=cfg.search.momentum,
        weight_decay=cfg.search.weight_decay,
        max_epochs=cfg.search.epochs,
    )
    trainer = make_trainer(
        max_epochs=cfg.search.epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        precision=cfg.trainer.precision,
        progress=cfg.trainer.progress,
        callbacks=[EpochRecorder(record, "search", val_data=(x[arch_rows], y[arch_rows]))],
        root_dir=str(run_dir),
        traced=True,
    )
    evaluator = Lightning(
        module,
        trainer,
        train_dataloaders=make_loader(
            x[weights_rows],
            y[weights_rows],
            batch_size=cfg.search.batch_size,
            shuffle=True,
            seed=cfg.seed,
            traced=True,
        ),
        val_dataloaders=make_loader(
            x[arch_rows],
            y[arch_rows],
            batch_size=cfg.search.batch_size,
            shuffle=True,
            seed=cfg.seed + 1,
            traced=True,
        ),
    )
    strategy = strategy_from_config(cfg)
    started = time.perf_counter()
    architecture = nas_search(
        space_from_args(space_args), evaluator, strategy, experiment_dir=run_dir / "nni"
    )
    seconds = time.perf_counter() - started
    return SearchResult(
        space=space_args, architecture=architecture, seconds=seconds, history=history
    )


def run_search(
    cfg: ExperimentConfig,
    data: FoldData,
    run_dir: Path,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search an architecture with ``cfg.search.strategy`` (one-shot or multi-trial)."""
    if is_oneshot(cfg.search.strategy):
        return run_oneshot_search(cfg, data, run_dir, on_epoch=on_epoch)
    from emodarts_nni.pipeline.multitrial import run_multitrial_search

    return run_multitrial_search(cfg, data, run_dir, on_epoch=on_epoch)
