"""Search strategies by name: one config value swaps the NNI strategy.

=================  ===========  ===============================================================
name               kind         NNI class, what it needs, parameters (defaults)
=================  ===========  ===============================================================
``darts``          one-shot     ``DARTS`` (first order; :mod:`emodarts_nni.strategy.darts.first_order` runs NNI's step
                                without the gradients it discards). A Lightning evaluator with train and
                                validation dataloaders (val batches drive the α step).
                                ``arc_learning_rate`` (3e-4), ``gradient_clip_val`` (None),
                                ``warmup_epochs`` (0), ``log_prob_every_n_step`` (10),
                                ``penalty`` (None), ``arc_weight_decay`` (1e-3; α's Adam,
                                from ``search.arch_weight_decay``; all our DARTS variants).
``darts-2nd``      one-shot     ``SecondOrderDARTS`` (:mod:`emodarts_nni.strategy.darts.second_order`): unrolled
                                DARTS, finite-difference Hessian-vector product scaled correctly.
                                As ``darts`` (no ``penalty``) plus ``epsilon_scale`` (0.01). The
                                virtual step is the evaluator's SGD step (momentum, weight decay).
                                About 2.6× the CPU time of a ``darts`` step (docs/strategies.md).
``beta-darts``     one-shot     ``BetaDARTS`` (:mod:`emodarts_nni.strategy.darts.beta`): first-order DARTS plus
                                the β-decay regulariser on α. As ``darts`` plus
                                ``beta_decay_weight`` (50.0: λ = 50 · epoch / epochs, linear from 0).
``pc-darts``       one-shot     ``PCDARTS`` (:mod:`emodarts_nni.strategy.darts.pc`; PC-DARTS, arXiv:1907.05737):
                                ``darts`` on partial-channel mixed cells with edge normalisation β,
                                which also ranks the exported edges. As ``darts`` plus
                                ``partial_channels`` (K, 4): must divide ``space.init_channels``
                                and, with SeqNN cells, ``hidden / 2`` (checked when the config loads).
``darts-minus``    one-shot     ``DartsMinus`` (:mod:`emodarts_nni.strategy.darts.minus`; DARTS-,
                                arXiv:2009.01027): ``darts`` with an auxiliary skip on every edge,
                                weighted ``auxiliary_skip_weight`` (1.0) × (1 − epoch /
                                ``decay_epochs``) (None: the search's epochs); never exported.
``enas``           one-shot     ``ENAS``: RL controller, rewarded by a validation metric the
                                evaluator logs: ``reward_metric_name`` ("val_acc", which NNI's
                                ``Classification`` logs), ``batches_per_update`` (20),
                                ``update_kwargs`` (NNI's), ``replay_buffer_size`` (None),
                                ``warmup_epochs`` (0), ``log_prob_every_n_step`` (10),
                                ``penalty`` (None). Needs tianshou 0.5 + gym 0.26 and
                                pytorch-lightning < 2.1 (nni-notes #1; 2.0.9 works unmodified).
``gumbel``         one-shot     ``GumbelDARTS`` (:mod:`emodarts_nni.strategy.darts.gumbel`: NNI's, on
                                our DARTS cells, so it exports as ``darts``): as ``darts`` plus
                                ``temperature`` ((1.0, 0.33): initial and final, annealed linearly).
``proxyless``      one-shot     ``Proxyless``: as ``darts``; samples one path per step (low
                                memory). NNI's Proxyless has no ``Cell`` support: cells whose
                                ops depend on their input (reduction cells, so the emoDARTS
                                CNN part) are refused with a ConfigError.
``random-oneshot`` one-shot     ``RandomOneShot``: uniform path sampling; its export is a
                                *random sample* of the space. ``filter`` (None).
``random``         multi-trial  ``Random``: each trial trains one sample. ``seed`` (None),
                                ``dedup`` (True). Budget: ``max_trial_number`` of the
                                experiment (see :mod:`emodarts_nni.nni_runtime`).
``evolution``      multi-trial  ``RegularizedEvolution``: ``population_size`` (100),
                                ``sample_size`` (25, at most ``population_size``),
                                ``mutation_prob`` (0.05), ``crossover`` (False), ``dedup``
                                (True), ``seed`` (None). Budget as for ``random``; the first
                                ``population_size`` trials are random.
=================  ===========  ===============================================================

Multi-trial strategies run each trial through NNI's manager (so the space, evaluator and
datasets must be importable and ``nni.trace``-d; nni-notes #8). Not offered: ``TPE`` (fails on
``InputChoice``), ``GridSearch`` and ``PolicyBasedRL`` (work, but are not part of the product).
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import ArchitectureError, ConfigError, EmodartsError, suggest
from emodarts_nni.common.rules import INT_POS, Invalid
from emodarts_nni.nni_runtime.guards import enas_supported, proxyless_cell_guard
from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.strategy.defaults import (
    ARC_WEIGHT_DECAY,
    PC_DARTS_PARTIAL_CHANNELS,
    PC_DARTS_PARTIAL_CHANNELS_KEY,
)

if TYPE_CHECKING:  # the registry is torch- and NNI-free: config.py validates against it
    from nni.nas.experiment import NasExperiment
    from nni.nas.strategy import Strategy

    from emodarts_nni.config.experiment import ExperimentConfig

_DARTS_PARAMS = (
    "arc_learning_rate",
    "gradient_clip_val",
    "log_prob_every_n_step",
    "warmup_epochs",
    "penalty",
    "mutation_hooks",
)
#: Our DARTS family (emodarts_nni.strategy.darts.first_order.DARTS and its variants) also sets α's weight decay.
_OUR_DARTS_PARAMS = (*_DARTS_PARAMS, "arc_weight_decay")


@dataclass(frozen=True)
class StrategySpec:
    """How one strategy name maps to NNI: its class, kind, accepted parameters, defaults."""

    name: str
    nni_class: str
    oneshot: bool
    params: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: The parameters this strategy takes from an experiment config's other keys.
    from_config: Callable[[ExperimentConfig], dict[str, Any]] = field(default=lambda cfg: {})
    #: Trains the whole supernet through NNI's differentiable cells (so it can recompute
    #: them: ``search.memory: lean``; and ``emodarts plan`` sizes the supernet).
    differentiable: bool = False
    #: Rules between this strategy's parameters and the rest of a config (``ConfigError``).
    check: Callable[[ExperimentConfig], None] = field(default=lambda cfg: None)
    #: Trains every candidate of the supernet each step (``emodarts plan`` sizes the
    #: supernet; every ``differentiable`` strategy does, and so do pc-darts and darts-minus).
    supernet: bool = False
    #: The DARTS order of its α step, as ``emodarts plan`` sizes it ("first" or "second").
    order: str = "first"

    def unknown_params(self, names: Iterable[str]) -> list[str]:
        """The names (sorted) that are not parameters of this strategy."""
        return sorted(set(names) - set(self.params))

    def create(self, **params: Any) -> Strategy:
        """Instantiate the NNI strategy with the defaults overridden by ``params``."""
        unknown = self.unknown_params(params)
        if unknown:
            raise ConfigError(
                f"strategy {self.name!r} has no parameter {unknown[0]!r}"
                + suggest(unknown[0], self.params)
            )
        module_name, class_name = self.nni_class.rsplit(".", 1)
        with quiet_nni_import():  # NNI is imported here, only when a strategy is made
            cls = getattr(importlib.import_module(module_name), class_name)
        try:
            return cls(**{**self.defaults, **params})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"strategy {self.name!r}: {exc}") from exc


def search_sizing(cfg: ExperimentConfig) -> dict[str, Any]:
    """How ``emodarts plan`` sizes this config's search step: the keyword arguments of
    :func:`emodarts_nni.space.sizing.search_estimate` (``supernet``, ``order``, ``memory`` and,
    for pc-darts, ``partial_channels``)."""
    spec = strategy_spec(cfg.search.strategy)
    out: dict[str, Any] = {
        "supernet": spec.supernet,
        "order": spec.order,
        "memory": cfg.search.memory,
    }
    if "partial_channels" in spec.params:
        out["partial_channels"] = {**spec.defaults, **cfg.search.params}["partial_channels"]
    return out


def _differentiable(cfg: ExperimentConfig) -> dict[str, Any]:
    """DARTS-like strategies: the α learning rate, weight-only warm-up, weight gradient clipping."""
    return {
        "arc_learning_rate": cfg.search.arch_lr,
        "gradient_clip_val": cfg.search.grad_clip,
        "warmup_epochs": cfg.search.warmup_epochs,
    }


def _our_differentiable(cfg: ExperimentConfig) -> dict[str, Any]:
    """Our DARTS family: :func:`_differentiable` and the α optimiser's weight decay."""
    return {**_differentiable(cfg), "arc_weight_decay": cfg.search.arch_weight_decay}


def _fixed_arch_weight_decay(cfg: ExperimentConfig) -> None:
    """NNI's own GumbelDARTS and Proxyless fix α's weight decay: refuse another value."""
    if cfg.search.arch_weight_decay != ARC_WEIGHT_DECAY:
        raise ConfigError(
            f"search.arch_weight_decay = {cfg.search.arch_weight_decay!r}: NNI's "
            f"{cfg.search.strategy!r} fixes α's weight decay at {ARC_WEIGHT_DECAY}; "
            "use darts, darts-2nd, beta-darts, pc-darts or darts-minus to change it"
        )


def _enas(cfg: ExperimentConfig) -> dict[str, Any]:
    """ENAS is rewarded by the per-batch validation UA that SerModule logs; warm-up as DARTS."""
    return {"reward_metric_name": "val_batch_ua", "warmup_epochs": cfg.search.warmup_epochs}


def _check_partial_channels(cfg: ExperimentConfig) -> None:
    """pc-darts's K must split every edge of the configured space (torch-free)."""
    from emodarts_nni.space.args import check_partial_channels

    k = cfg.search.params.get("partial_channels", PC_DARTS_PARTIAL_CHANNELS)
    try:
        INT_POS.convert(k)
    except Invalid:
        raise ConfigError(
            f"{PC_DARTS_PARTIAL_CHANNELS_KEY} = {k!r}: expected a positive integer (PC-DARTS's K)"
        ) from None
    space = {"init_channels": cfg.space.init_channels, "cnn_cells": cfg.space.cnn_cells}
    space |= {"seq_cells": cfg.space.seq_cells, "hidden": cfg.space.hidden}
    check_partial_channels(space, k, PC_DARTS_PARTIAL_CHANNELS_KEY)


def _seeded(cfg: ExperimentConfig) -> dict[str, Any]:
    """Multi-trial strategies draw from the experiment's seed."""
    return {"seed": cfg.seed}


def _evolution(cfg: ExperimentConfig) -> dict[str, Any]:
    """Regularised evolution: population and sample sizes from ``search``, and the seed."""
    return {
        "population_size": cfg.search.population_size,
        "sample_size": cfg.search.sample_size,
        **_seeded(cfg),
    }


#: Every strategy a config may name, in the order of the table above.
STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec(
            "darts",
            "emodarts_nni.strategy.darts.first_order.DARTS",
            True,
            _OUR_DARTS_PARAMS,
            from_config=_our_differentiable,
            differentiable=True,
            supernet=True,
        ),
        StrategySpec(
            "darts-2nd",
            "emodarts_nni.strategy.darts.second_order.SecondOrderDARTS",
            True,
            (*(p for p in _OUR_DARTS_PARAMS if p != "penalty"), "epsilon_scale"),
            from_config=_our_differentiable,
            differentiable=True,
            supernet=True,
            order="second",
        ),
        StrategySpec(
            "beta-darts",
            "emodarts_nni.strategy.darts.beta.BetaDARTS",
            True,
            (*_OUR_DARTS_PARAMS, "beta_decay_weight"),
            from_config=_our_differentiable,
            differentiable=True,
            supernet=True,
        ),
        StrategySpec(
            "pc-darts",
            "emodarts_nni.strategy.darts.pc.PCDARTS",
            True,
            (*_OUR_DARTS_PARAMS, "partial_channels"),
            {"partial_channels": PC_DARTS_PARTIAL_CHANNELS},
            from_config=_our_differentiable,
            check=_check_partial_channels,
            supernet=True,
        ),
        StrategySpec(
            "darts-minus",
            "emodarts_nni.strategy.darts.minus.DartsMinus",
            True,
            (*_OUR_DARTS_PARAMS, "auxiliary_skip_weight", "decay_epochs"),
            from_config=_our_differentiable,
            supernet=True,
        ),
        StrategySpec(
            "enas",
            "nni.nas.strategy.ENAS",
            True,
            (
                "batches_per_update",
                "log_prob_every_n_step",
                "replay_buffer_size",
                "reward_metric_name",
                "policy_fn",
                "update_kwargs",
                "warmup_epochs",
                "penalty",
                "mutation_hooks",
            ),
            {"reward_metric_name": "val_acc"},
            from_config=_enas,
        ),
        StrategySpec(
            "gumbel",
            "emodarts_nni.strategy.darts.gumbel.GumbelDARTS",
            True,
            (*_DARTS_PARAMS, "temperature"),
            from_config=_differentiable,
            differentiable=True,
            check=_fixed_arch_weight_decay,
            supernet=True,
        ),
        StrategySpec(
            "proxyless",
            "nni.nas.strategy.Proxyless",
            True,
            _DARTS_PARAMS,
            from_config=_differentiable,
            check=_fixed_arch_weight_decay,
        ),
        StrategySpec(
            "random-oneshot", "nni.nas.strategy.RandomOneShot", True, ("filter", "mutation_hooks")
        ),
        StrategySpec(
            "random", "nni.nas.strategy.Random", False, ("dedup", "seed"), from_config=_seeded
        ),
        StrategySpec(
            "evolution",
            "nni.nas.strategy.RegularizedEvolution",
            False,
            ("population_size", "sample_size", "mutation_prob", "crossover", "dedup", "seed"),
            from_config=_evolution,
        ),
    )
}


#: Every strategy name a config may name (``search.strategy``), in the registry's order.
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)
#: The strategies that train one supernet in-process (the rest run trials through NNI).
ONE_SHOT_STRATEGIES: tuple[str, ...] = tuple(n for n, spec in STRATEGIES.items() if spec.oneshot)


def strategy_spec(name: str) -> StrategySpec:
    """The registry entry of ``name``; an unknown name is a :class:`ConfigError` listing valid ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy {name!r}" + suggest(str(name), list(STRATEGIES))
        ) from None


def is_oneshot(name: str) -> bool:
    """Whether ``name`` trains one supernet in-process (else it runs trials through NNI)."""
    return strategy_spec(name).oneshot


def check_strategy_config(cfg: ExperimentConfig) -> None:
    """The rules between ``cfg.search.strategy``'s parameters and the rest of the config
    (e.g. pc-darts's K against the space's widths): a :class:`ConfigError` naming the key."""
    strategy_spec(cfg.search.strategy).check(cfg)


def make_strategy(name: str, **params: Any) -> Strategy:
    """A fresh NNI strategy for ``name`` (see the module table for its ``params``).

    Strategies are stateful and run once: make a new one for every search.
    """
    spec = strategy_spec(name)
    if name == "enas" and not enas_supported():
        raise ConfigError(
            "strategy 'enas' needs pytorch-lightning < 2.1 (NNI 3.0's ENAS breaks on later "
            "versions, nni-notes #1); install pytorch-lightning==2.0.9"
        )
    if name == "proxyless":  # fail before training, not deep inside it (guard's docstring)
        params["mutation_hooks"] = [proxyless_cell_guard, *params.get("mutation_hooks", [])]
    return spec.create(**params)


def strategy_params(cfg: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of ``cfg.search.strategy`` taken from an experiment config: what
    the strategy's own ``from_config`` derives, then ``search.params`` (which wins)."""
    return {**strategy_spec(cfg.search.strategy).from_config(cfg), **dict(cfg.search.params)}


def strategy_from_config(cfg: ExperimentConfig) -> Strategy:
    """A fresh NNI strategy for an experiment config (``search.strategy`` and its parameters;
    ``search.memory: lean`` adds the recomputing cells of :mod:`emodarts_nni.strategy.supermodule.lean`)."""
    params = strategy_params(cfg)
    if cfg.search.memory == "lean" and strategy_spec(cfg.search.strategy).differentiable:
        from emodarts_nni.strategy.supermodule.lean import lean_mutation_hooks

        params["mutation_hooks"] = [*lean_mutation_hooks(), *params.get("mutation_hooks", [])]
    return make_strategy(cfg.search.strategy, **params)


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (one-shot exports use ``str`` subclasses, numpy ints)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item, where) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item, f"{where}/{key}") for key, item in value.items()}
    if isinstance(value, numbers.Integral):  # also numpy integers
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ArchitectureError(
        f"exported choice {where!r} has a value of type {type(value).__name__} that is not JSON"
    )


def export_architecture(experiment_or_strategy: NasExperiment | Strategy) -> dict[str, Any]:
    """The best architecture found, as a JSON-serialisable dict ``{choice label: value}``.

    Takes a finished :class:`~nni.nas.experiment.NasExperiment` or its strategy. For a
    multi-trial search call it while the experiment's manager still runs (inside
    :func:`emodarts_nni.nni_runtime.running_nas_experiment`): the trials' metrics live there.
    """
    from nni.nas.experiment import NasExperiment
    from nni.nas.strategy import Strategy

    if isinstance(experiment_or_strategy, NasExperiment):
        strategy = experiment_or_strategy.strategy
    elif isinstance(experiment_or_strategy, Strategy):
        strategy = experiment_or_strategy
    else:
        raise TypeError(
            f"expected a NasExperiment or an NNI Strategy, got {type(experiment_or_strategy)}"
        )
    models = list(strategy.list_models(sort=True, limit=1))
    if not models:
        raise EmodartsError(
            f"the {type(strategy).__name__} search produced no trained model with a metric "
            "(did every trial fail? see the trials' logs in the NNI experiment folder)"
        )
    return _plain(dict(models[0].sample), "architecture")


__all__ = [
    "ARC_WEIGHT_DECAY",
    "ONE_SHOT_STRATEGIES",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "StrategySpec",
    "check_strategy_config",
    "export_architecture",
    "is_oneshot",
    "make_strategy",
    "search_sizing",
    "strategy_from_config",
    "strategy_params",
    "strategy_spec",
]
