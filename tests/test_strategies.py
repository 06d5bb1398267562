"""Strategies by name: every registered strategy searches the toy space and exports a plain dict.

One-shot strategies run in-process (seconds each); the multi-trial ones start NNI's manager
and run 2 trials side by side, checked through the REST API the web UI reads (``e2e``).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import toyspace
from nni.nas.strategy import Strategy

from emodarts_nni.common.errors import ConfigError, EmodartsError
from emodarts_nni.config import experiment as config
from emodarts_nni.nni_runtime import (
    configure_nas_experiment,
    fetch_metrics,
    fetch_trial_jobs,
    run_search,
    running_nas_experiment,
)
from emodarts_nni.strategy.registry import (
    ONE_SHOT_STRATEGIES,
    STRATEGIES,
    STRATEGY_NAMES,
    export_architecture,
    is_oneshot,
    make_strategy,
)

ONE_SHOT = [name for name, spec in STRATEGIES.items() if spec.oneshot]
MULTI_TRIAL = [name for name, spec in STRATEGIES.items() if not spec.oneshot]
#: Toy-sized parameters; ENAS updates its controller every 2 rewards so 1 epoch exercises it.
TOY_PARAMS: dict[str, dict[str, Any]] = {
    "enas": {"batches_per_update": 2, "update_kwargs": {"batch_size": 4, "repeat": 1}},
    "random": {"seed": 0},
    "evolution": {"population_size": 2, "sample_size": 1, "seed": 0},
}


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------------- registry


def test_registry_offers_exactly_the_strategies_a_config_may_name() -> None:
    assert tuple(STRATEGIES) == STRATEGY_NAMES
    assert tuple(ONE_SHOT) == ONE_SHOT_STRATEGIES
    # the config validates search.strategy against the registry itself
    strategy_rule = next(
        f.metadata["rule"] for f in dataclasses.fields(config.SearchConfig) if f.name == "strategy"
    )
    assert strategy_rule.options == STRATEGY_NAMES
    assert all(is_oneshot(name) for name in ONE_SHOT)
    assert not any(is_oneshot(name) for name in MULTI_TRIAL)


def test_unknown_strategy_is_a_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'dart'") as caught:
        make_strategy("dart")
    assert "did you mean 'darts'" in str(caught.value)
    assert "valid: " + ", ".join(sorted(STRATEGY_NAMES)) in str(caught.value)
    with pytest.raises(ConfigError, match="unknown strategy 'tpe'"):
        is_oneshot("tpe")


def test_unknown_parameter_is_a_config_error_naming_it() -> None:
    with pytest.raises(
        ConfigError, match="'evolution' has no parameter 'populationsize'"
    ) as caught:
        make_strategy("evolution", populationsize=4)
    assert "did you mean 'population_size'" in str(caught.value)
    with pytest.raises(ConfigError, match="strategy 'evolution': sample_size"):
        make_strategy("evolution", population_size=2, sample_size=3)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_make_strategy_returns_a_fresh_nni_strategy(name: str) -> None:
    first, second = make_strategy(name), make_strategy(name)
    assert isinstance(first, Strategy) and first is not second
    assert type(first).__name__ == STRATEGIES[name].nni_class.rsplit(".", 1)[1]


def test_params_override_the_registry_defaults() -> None:
    assert make_strategy("enas").reward_metric_name == "val_acc"
    assert make_strategy("enas", reward_metric_name="val_loss").reward_metric_name == "val_loss"
    assert make_strategy("evolution", population_size=6, sample_size=3).population_size == 6


# ---------------------------------------------------------------------------- export


class _Label(str):
    """Stands in for the ``str`` subclass one-shot exports use as keys."""


class _FixedStrategy(Strategy):
    """A finished strategy whose best model is a given sample."""

    def __init__(self, samples: list[dict[Any, Any]]) -> None:
        super().__init__()
        self.samples = samples

    def list_models(self, sort: bool = True, limit: int | None = None) -> Any:
        yield from (SimpleNamespace(sample=sample) for sample in self.samples[:limit])


def test_export_makes_keys_and_values_plain_json_types() -> None:
    sample = {_Label("normal/op_2_0"): _Label("conv_3x3"), "normal/input_2_0": (np.int64(1),)}
    exported = export_architecture(_FixedStrategy([sample]))
    assert exported == {"normal/op_2_0": "conv_3x3", "normal/input_2_0": [1]}
    assert [type(key) for key in exported] == [str, str]
    assert type(exported["normal/op_2_0"]) is str
    assert type(exported["normal/input_2_0"][0]) is int


def test_export_of_a_search_without_results_is_a_clear_error() -> None:
    with pytest.raises(EmodartsError, match="produced no trained model"):
        export_architecture(_FixedStrategy([]))
    with pytest.raises(TypeError, match="NasExperiment or an NNI Strategy"):
        export_architecture({"not": "an experiment"})


# ------------------------------------------------------------------ one-shot searches


@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_strategy_searches_the_toy_space_and_exports(name: str, tmp_path: Path) -> None:
    reduction = name != "proxyless"  # Proxyless cannot search a reduction cell (below)
    strategy = make_strategy(name, **TOY_PARAMS.get(name, {}))
    architecture = run_search(
        toyspace.ToySpace(reduction=reduction),
        toyspace.make_evaluator(1),
        strategy,
        experiment_dir=tmp_path,
    )
    toyspace.assert_valid_architecture(architecture, reduction=reduction)
    assert not (tmp_path / "_latest").exists(), "one-shot searches start no NNI manager"


def test_proxyless_refuses_a_reduction_cell_before_training(tmp_path: Path) -> None:
    """NNI's Proxyless has no Cell support; on a reduction cell it would crash mid-training."""
    with pytest.raises(ConfigError, match="'proxyless' cannot search cell 'reduce'"):
        run_search(
            toyspace.ToySpace(reduction=True),
            toyspace.make_evaluator(1),
            make_strategy("proxyless"),
            experiment_dir=tmp_path,
        )


def test_enas_trains_its_controller_on_the_pinned_lightning(tmp_path: Path) -> None:
    """nni-notes #1: ENAS works unmodified on pytorch-lightning 2.0.9 (and learns)."""
    import pytorch_lightning as pl
    import torch

    snapshots: list[dict[str, torch.Tensor]] = []

    class PolicySnapshots(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            snapshots.append({k: v.clone() for k, v in pl_module.policy.state_dict().items()})

        def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
            self.on_train_start(trainer, pl_module)

    evaluator = toyspace.make_evaluator(1, callbacks=[PolicySnapshots()])
    run_search(
        toyspace.ToySpace(),
        evaluator,
        make_strategy("enas", **TOY_PARAMS["enas"]),
        experiment_dir=tmp_path,
    )
    before, after = snapshots
    assert any(not torch.equal(before[key], after[key]) for key in before)


# --------------------------------------------------------------- multi-trial searches


def test_multi_trial_search_needs_a_budget_and_a_port(tmp_path: Path) -> None:
    space, evaluator = toyspace.ToySpace(), toyspace.make_evaluator(1)
    with pytest.raises(ConfigError, match="needs a budget"):
        configure_nas_experiment(space, evaluator, make_strategy("random"), experiment_dir=tmp_path)
    experiment = configure_nas_experiment(
        space, evaluator, make_strategy("random"), experiment_dir=tmp_path, max_trial_number=2
    )
    with pytest.raises(ConfigError, match="needs a port"), running_nas_experiment(experiment):
        pass


@pytest.mark.e2e
@pytest.mark.parametrize("name", MULTI_TRIAL)
def test_multi_trial_search_shows_every_trial_in_the_web_ui(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 trials side by side; both final metrics reach the REST API, then the best exports."""
    from nni.tools.nnictl import constants

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # NNI's Python side resolved "~" at import: patch it too
    monkeypatch.setattr(constants, "NNI_HOME_DIR", str(home / "nni-experiments"))
    port = free_port()
    experiment = configure_nas_experiment(
        toyspace.ToySpace(),
        toyspace.make_evaluator(1),
        make_strategy(name, **TOY_PARAMS[name]),
        experiment_dir=tmp_path / "nni",
        name=f"toy-{name}",
        max_trial_number=2,
        trial_concurrency=2,
        max_trial_duration="3m",
        trial_env={"PYTHONPATH": str(Path(toyspace.__file__).parent), "OMP_NUM_THREADS": "1"},
    )
    start = time.monotonic()
    with running_nas_experiment(experiment, port=port) as finished:
        jobs = fetch_trial_jobs(port)
        metrics = fetch_metrics(port)
        architecture = export_architecture(finished)
    assert time.monotonic() - start < 150
    assert sorted(job["status"] for job in jobs) == ["SUCCEEDED", "SUCCEEDED"], _trial_logs(jobs)
    finals = {m["trial_id"]: m["default"] for m in metrics if m["type"] == "FINAL"}
    assert set(finals) == {job["trialJobId"] for job in jobs}
    assert all(0.0 <= value <= 1.0 for value in finals.values())
    toyspace.assert_valid_architecture(architecture)
    assert not (home / "nni-experiments").exists()


def _trial_logs(jobs: list[dict[str, Any]]) -> str:
    """The tail of each trial's stderr, for failure messages."""
    tails = []
    for job in jobs:
        stderr = Path(job.get("logPath", "")) / "trial.stderr"
        if stderr.is_file():
            tails.append(f"--- {job['trialJobId']}:\n" + stderr.read_text()[-2000:])
    return "\n".join(tails)


def test_each_strategy_maps_the_config_to_parameters_it_accepts():
    """Each registry entry derives its own parameters from a config (no if-chain on names
    elsewhere), and only parameters its NNI class takes; ``search.params`` wins."""
    from emodarts_nni.config.experiment import config_from_dict
    from emodarts_nni.strategy.registry import strategy_params

    for name, spec in STRATEGIES.items():
        cfg = config_from_dict({"search": {"strategy": name, "arch_lr": 0.01}})
        derived = spec.from_config(cfg)
        assert spec.unknown_params(derived) == [], name
        assert strategy_params(cfg) == derived
    cfg = config_from_dict({"search": {"strategy": "darts", "params": {"warmup_epochs": 2}}})
    assert strategy_params(cfg) == {
        "arc_learning_rate": cfg.search.arch_lr,
        "gradient_clip_val": cfg.search.grad_clip,
        "warmup_epochs": 2,
        "arc_weight_decay": cfg.search.arch_weight_decay,
    }
    assert strategy_params(config_from_dict({"seed": 7, "search": {"strategy": "random"}})) == {
        "seed": 7
    }


@pytest.mark.parametrize("name", ["darts", "darts-2nd", "beta-darts", "pc-darts", "darts-minus"])
def test_arch_weight_decay_reaches_the_alpha_optimiser(name):
    from conftest import SMALL_SPACE

    from emodarts_nni.config.experiment import config_from_dict
    from emodarts_nni.space.model import build_space
    from emodarts_nni.strategy.registry import strategy_from_config
    from emodarts_nni.training.module import SerModule

    search = {"strategy": name, "arch_weight_decay": 0.05}
    if name == "pc-darts":  # the small space's 2 channels do not split into K = 4
        search["params"] = {"partial_channels": 1}
    strategy = strategy_from_config(config_from_dict({"search": search}))
    training = SerModule()
    training.set_model(strategy.mutate_model(build_space("emodarts", **SMALL_SPACE)))
    optimiser = strategy.configure_oneshot_module(training).configure_architecture_optimizers()
    assert [g["weight_decay"] for g in optimiser.param_groups] == [0.05]
    assert len(optimiser.param_groups[0]["params"]) > 0


@pytest.mark.parametrize("name", ["gumbel", "proxyless"])
def test_arch_weight_decay_is_refused_where_nnis_strategy_fixes_it(name, tmp_path):
    from emodarts_nni.config.experiment import load_config

    path = tmp_path / "c.yaml"
    path.write_text(f"search:\n  strategy: {name}\n  arch_weight_decay: 0.05\n")
    with pytest.raises(ConfigError, match="search.arch_weight_decay"):
        load_config(path)
