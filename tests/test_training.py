"""The one training set-up: optimiser from OptimiserConfig, trainer from TrainerConfig."""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from emodarts_nni.config.experiment import OptimiserConfig, TrainerConfig, config_from_dict
from emodarts_nni.training.module import SerModule, make_training


def _data(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4, 8)).astype(np.float32), rng.integers(0, 2, n)


def _optimisers(module: SerModule) -> tuple[torch.optim.SGD, object]:
    module.set_model(nn.Linear(3, 2))
    configured = module.configure_optimizers()
    return configured["optimizer"], configured["lr_scheduler"]


def test_ser_module_takes_the_optimiser_config():
    cfg = OptimiserConfig(lr=0.1, lr_min=0.01, momentum=0.5, weight_decay=0.0, epochs=7)
    optimizer, scheduler = _optimisers(SerModule(cfg))
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.5, 0.0)
    assert (scheduler.T_max, scheduler.eta_min) == (7, 0.01)


def test_ser_module_defaults_are_the_optimiser_config_defaults():
    defaults = OptimiserConfig()
    optimizer, scheduler = _optimisers(SerModule())
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"]) == (defaults.lr, defaults.momentum)
    assert group["weight_decay"] == defaults.weight_decay
    assert (scheduler.T_max, scheduler.eta_min) == (defaults.epochs, defaults.lr_min)


def test_make_training_takes_every_setting_from_the_configs(tmp_path):
    optimiser = OptimiserConfig(epochs=3, batch_size=4, grad_clip=2.5)
    hardware = TrainerConfig(accelerator="cpu", precision="bf16-mixed", progress=False)
    training = make_training(
        optimiser, hardware, _data(), _data(6), seed=1, callbacks=[], root_dir=str(tmp_path)
    )
    assert training.module.max_epochs == 3 and training.trainer.max_epochs == 3
    assert training.trainer.precision == "bf16-mixed"
    assert training.trainer.gradient_clip_val == 2.5
    assert training.train_loader.batch_size == 4 and training.val_loader.batch_size == 4
    assert isinstance(training.train_loader.sampler, torch.utils.data.RandomSampler)
    assert isinstance(training.val_loader.sampler, torch.utils.data.SequentialSampler)


def test_one_shot_set_up_shuffles_both_halves_and_leaves_clipping_to_the_strategy(tmp_path):
    training = make_training(
        OptimiserConfig(epochs=1, batch_size=2),
        TrainerConfig(accelerator="cpu", progress=False),
        _data(),
        _data(),
        seed=1,
        callbacks=[],
        root_dir=str(tmp_path),
        clip_gradients=False,
        shuffle_validation=True,
    )
    assert training.trainer.gradient_clip_val is None
    assert isinstance(training.val_loader.sampler, torch.utils.data.RandomSampler)
    # the two halves are shuffled with different generators (seed, seed + 1)
    assert training.train_loader.generator.initial_seed() == 1
    assert training.val_loader.generator.initial_seed() == 2


def test_multi_trial_trials_get_the_configs_trainer_settings():
    from emodarts_nni.pipeline.multitrial import trial_settings

    cfg = config_from_dict(
        {
            "corpus": {"kind": "synth"},
            "search": {"strategy": "random", "trial_epochs": 2, "lr": 0.05},
            "trainer": {"accelerator": "cpu", "precision": "bf16-mixed", "num_threads": 3},
        }
    )
    settings = trial_settings(cfg)
    optimiser = OptimiserConfig(**settings["optimiser"])
    assert optimiser == dataclasses.replace(
        OptimiserConfig(
            **{f.name: getattr(cfg.search, f.name) for f in dataclasses.fields(optimiser)}
        ),
        epochs=2,
    )
    hardware = TrainerConfig(**settings["hardware"])
    assert hardware == dataclasses.replace(cfg.trainer, progress=False)
    assert settings["seed"] == cfg.seed


class _SigintAt(pl.Callback):
    """Sends this process SIGINT (a terminal's Ctrl-C) after ``batch`` training batches."""

    def __init__(self, batch: int) -> None:
        self.batch, self.seen = batch, 0

    def on_train_batch_end(self, *args: object) -> None:
        self.seen += 1
        if self.seen == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_fit_leaves_fit_instead_of_ending_it_as_if_trained(tmp_path):
    # Lightning on its own swallows KeyboardInterrupt and returns from fit: a stage cut
    # short would then save its half-trained model and mark itself finished.
    interrupt = _SigintAt(batch=2)
    training = make_training(
        OptimiserConfig(epochs=5, batch_size=2),
        TrainerConfig(accelerator="cpu", progress=False),
        _data(),
        _data(4),
        seed=0,
        callbacks=[interrupt],
        root_dir=str(tmp_path),
    )
    training.module.set_model(nn.Sequential(nn.Flatten(), nn.Linear(32, 2)))
    # Python's own SIGINT handler, as a command starts with (an earlier test in the same
    # process may have left another one installed)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            training.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert interrupt.seen == 2 and training.trainer.current_epoch == 0
