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
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emodarts_nni.config.experiment import ExperimentConfig
from emodarts_nni.pipeline.data import FoldData, stratified_halves
from emodarts_nni.pipeline.multitrial import run_multitrial_search
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.pipeline.search_result import SearchResult, space_arguments
from emodarts_nni.space.model import space_from_args
from emodarts_nni.strategy.collapse import CollapseMonitor
from emodarts_nni.strategy.registry import is_oneshot, strategy_from_config
from emodarts_nni.training.module import EpochRecorder, make_training
from emodarts_nni.training.progress import ProgressLines

log = logging.getLogger("emodarts")

__all__ = ["SearchResult", "run_oneshot_search", "run_search", "space_arguments"]


def run_oneshot_search(
    cfg: ExperimentConfig,
    data: FoldData,
    run_dir: Path,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search with a one-shot strategy on the fold's search part (in-process).

    NNI's experiment folder goes to ``run_dir``'s ``nni/``.
    """
    from emodarts_nni.nni_runtime import run_search as nas_search

    # NNI's path-sampling strategies (random-oneshot, its export) draw from Python's global
    # `random`; without a seed the exported architecture differed between identical runs.
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    space_args = space_arguments(cfg, data)
    x, y = data.x["search"], data.y["search"]
    weights_rows, arch_rows = stratified_halves(y, cfg.seed)
    history: list[dict[str, Any]] = []
    # Collapse metrics from the epoch's α (none for strategies without α); DARTS+ stop opt-in.
    monitor = CollapseMonitor(cfg.search.early_stop, cfg.search.early_stop_epochs)

    lines = ProgressLines("search", cfg.search.epochs)

    def record(row: dict[str, Any]) -> None:
        monitor.annotate(row)
        history.append(row)
        lines.epoch_done(row)
        if on_epoch is not None:
            on_epoch(row)

    training = make_training(
        cfg.search,
        cfg.trainer,
        (x[weights_rows], y[weights_rows]),
        (x[arch_rows], y[arch_rows]),
        seed=cfg.seed,
        # The monitor after the recorder: it stops the trainer on the row the recorder made.
        callbacks=[
            EpochRecorder(record, "search", val_data=(x[arch_rows], y[arch_rows])),
            monitor,
            lines,
        ],
        root_dir=str(run_dir),
        clip_gradients=False,  # the strategy steps (and clips) its own optimisers
        shuffle_validation=True,  # the architecture half drives the α step: shuffled too
        traced=True,
    )
    evaluator = training.evaluator()
    strategy = strategy_from_config(cfg)
    started = time.perf_counter()
    architecture = nas_search(
        space_from_args(space_args), evaluator, strategy, experiment_dir=RunFolder(run_dir).nni
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
    return run_multitrial_search(cfg, data, run_dir, on_epoch=on_epoch)
