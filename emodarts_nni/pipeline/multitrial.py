"""Multi-trial search (NNI ``Random``, ``RegularizedEvolution``): every sampled architecture
is an NNI trial, visible natively in the web UI.

A trial trains its architecture for ``search.trial_epochs`` on one class-stratified half of
the fold's *search* part and reports UA on the other half each epoch; its final metric is
the best of those. Trials are separate processes, so they read the fold's arrays from a
file in the run folder (NNI refuses evaluator payloads over 64 KB; nni-notes #8).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emodarts_nni.config.experiment import (
    ExperimentConfig,
    OptimiserConfig,
    TrainerConfig,
    config_to_dict,
)
from emodarts_nni.pipeline.data import FoldData, load_fold_arrays, stratified_halves
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.pipeline.search_result import SearchResult, space_arguments
from emodarts_nni.space.model import space_from_args
from emodarts_nni.strategy.registry import export_architecture, strategy_from_config
from emodarts_nni.training.module import EpochRecorder, make_training

log = logging.getLogger("emodarts")


def trial_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The keyword arguments of :func:`train_sampled_architecture`, as plain data.

    NNI serialises an evaluator's arguments into each trial, so the optimiser (the search's,
    for ``search.trial_epochs``) and the trainer settings travel as plain dicts.
    """
    optimiser = {f.name: getattr(cfg.search, f.name) for f in dataclasses.fields(OptimiserConfig)}
    return {
        "optimiser": {**optimiser, "epochs": cfg.search.trial_epochs},
        "hardware": {**config_to_dict(cfg.trainer), "progress": False},
        "seed": cfg.seed,
    }


def train_sampled_architecture(
    model: nn.Module,
    data_path: str,
    optimiser: Mapping[str, Any],
    hardware: Mapping[str, Any],
    seed: int,
) -> float:
    """The body of one trial: train ``model`` briefly and report UA to NNI; returns the best UA.

    ``optimiser`` and ``hardware`` are the fields of an :class:`OptimiserConfig` and a
    :class:`TrainerConfig` (see :func:`trial_settings`).
    """
    import nni

    hardware_cfg = TrainerConfig(**hardware)
    if hardware_cfg.num_threads:
        torch.set_num_threads(hardware_cfg.num_threads)
    torch.manual_seed(seed)
    x, y, _ = load_fold_arrays(data_path)
    fit_rows, score_rows = stratified_halves(y["search"], seed)
    xs, ys = x["search"], y["search"]
    scores: list[float] = []

    def report(row: dict[str, Any]) -> None:
        if "val_ua" in row:
            scores.append(float(row["val_ua"]))
            nni.report_intermediate_result({"default": scores[-1], "epoch": int(row["epoch"])})

    training = make_training(
        OptimiserConfig(**optimiser),
        hardware_cfg,
        (xs[fit_rows], ys[fit_rows]),
        (xs[score_rows], ys[score_rows]),
        seed=seed,
        callbacks=[EpochRecorder(report, "trial")],
        root_dir=".",
    )
    training.module.set_model(model)
    training.fit()
    best = max(scores) if scores else 0.0
    nni.report_final_result({"default": best})
    return best


def run_multitrial_search(
    cfg: ExperimentConfig,
    data: FoldData,
    run_dir: Path,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search with a multi-trial strategy: through NNI's manager (web UI on ``cfg.webui.port``),
    or in this process, one trial after another, when the web UI is disabled."""
    import time

    from nni.nas.evaluator import FunctionalEvaluator

    from emodarts_nni.nni_runtime import (
        configure_nas_experiment,
        final_metrics,
        running_nas_experiment,
    )

    folder = RunFolder(run_dir)
    space_args = space_arguments(cfg, data)
    data_path = data.save(folder.fold_arrays)
    evaluator = FunctionalEvaluator(
        train_sampled_architecture, data_path=str(data_path.resolve()), **trial_settings(cfg)
    )
    strategy = strategy_from_config(cfg)
    experiment = configure_nas_experiment(
        space_from_args(space_args),
        evaluator,
        strategy,
        experiment_dir=folder.nni,
        name=run_dir.name,
        max_trial_number=cfg.search.max_trials,
        trial_concurrency=cfg.search.trial_concurrency,
        in_process=not cfg.webui.enabled,  # no web UI: no manager either (nni-notes #7)
    )
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    with running_nas_experiment(experiment, port=cfg.webui.port, host=cfg.webui.host) as finished:
        seconds = time.perf_counter() - started
        architecture = export_architecture(finished)
        for metric in final_metrics(finished, cfg.webui.port, cfg.webui.host):
            if metric["type"] == "FINAL":
                row = {
                    "stage": "search",
                    "epoch": len(history),
                    "trial": metric["trial_id"],
                    "val_ua": metric["default"],
                }
                history.append(row)
                if on_epoch is not None:
                    on_epoch(row)
    return SearchResult(
        space=space_args, architecture=architecture, seconds=seconds, history=history
    )
