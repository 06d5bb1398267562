"""PC-DARTS and DARTS-: NNI's differentiable cell with partial channels, or with a decaying skip.

Both strategies are first-order DARTS (:class:`emodarts_nni.strategy.darts.first_order.DARTS`, the same step)
on a different mixed cell, installed by a mutation hook that runs before the DARTS cell's
(:class:`~emodarts_nni.strategy.supermodule.summed.SummedMixedCell`, whose ``edge`` and ``node`` they
override).
The cells exist only in the supernet: the exported architecture is the usual dict and the
retrained model is a fresh, full-width :class:`~emodarts_nni.space.model.EmoDartsSpace`.

* :class:`PartialChannelCell` (PC-DARTS, Xu et al., ICLR 2020, arXiv:1907.05737; reference
  code github.com/yuhuixu1993/PC-DARTS ``model_search.py``). On every edge only the first
  ``1/K`` of the channels go through the candidate ops, built ``1/K`` as wide; the rest
  bypass (through a 2×2 stride-2 max-pool on a stride-2 edge) and the two parts are
  concatenated and channel-shuffled in ``K`` groups. *Edge normalisation*: each node
  weighs its incoming edges by ``softmax(β)`` over those edges, and the export ranks the
  edges into a node by ``max_op softmax(α)·softmax(β)`` (``none`` excluded), as the
  reference's ``genotype()`` does. The partial axis is the cell's concatenation axis:
  channels in the CNN cells, features in the SeqNN cells (see ``docs/strategies.md``).
* :class:`AuxiliarySkipCell` (DARTS-, Chu et al., ICLR 2021, arXiv:2009.01027; reference
  code github.com/Meituan-AutoML/DARTS- ``src/search/model_search.py``). Every edge gets an
  extra skip connection outside the α mixture — identity, or ``FactorizedReduce`` on a
  stride-2 edge as in the reference — weighted by a coefficient that decays linearly from
  its initial value to 0 over the search (:func:`auxiliary_skip_weight`). It never appears
  in α, so it is never exported.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.common.rules import INT_POS, NONNEG, Number, checked
from emodarts_nni.space.args import partial_width_problem
from emodarts_nni.space.model import CnnCellOpFactory, SeqCellOpFactory
from emodarts_nni.space.op_names import SKIP_OP
from emodarts_nni.strategy.darts.first_order import DARTS, FrugalDartsModule
from emodarts_nni.strategy.defaults import PC_DARTS_PARTIAL_CHANNELS as DEFAULT_PARTIAL_CHANNELS
from emodarts_nni.strategy.defaults import PC_DARTS_PARTIAL_CHANNELS_KEY as PARTIAL_CHANNELS_KEY
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell

_WIDTH_FIELDS = ("channels", "hidden")
#: DARTS-'s ``decay_epochs`` when given (``None``, its default, is the search's epochs).
_DECAY_EPOCHS = Number(integer=True, low=1, description="a positive integer or null")


def channel_shuffle(x: torch.Tensor, groups: int, dim: int = 1) -> torch.Tensor:
    """ShuffleNet's channel shuffle along ``dim``: ``groups`` interleaved groups of channels.

    With ``groups = K`` the ``C/K`` channels an edge's ops produced end up spread over the
    whole width, so the next edge's partial slice sees a mix of processed and bypassed
    channels (PC-DARTS Sec. 3.2).
    """
    size = x.size(dim)
    if groups == 1:
        return x
    shape = list(x.shape)
    grouped = x.reshape(*shape[:dim], groups, size // groups, *shape[dim + 1 :])
    return grouped.transpose(dim, dim + 1).reshape(shape)


def auxiliary_skip_weight(epoch: int, epochs: int, initial: float = 1.0) -> float:
    """DARTS-'s coefficient of the auxiliary skip at (0-based) ``epoch`` of ``epochs``.

    The reference's linear ``DecayScheduler``: ``initial · (epochs − epoch) / epochs``, so 1
    in the first epoch, ``1/epochs`` in the last, and 0 from ``epochs`` on.
    """
    checked("epochs", epochs, INT_POS)
    return initial * max(0.0, (epochs - epoch) / epochs)


def _factory_width(factory: Any) -> tuple[str, int]:
    """``(field, width)`` of an op factory that states its width: the space's
    :class:`~emodarts_nni.space.model.CnnCellOpFactory` / :class:`~emodarts_nni.space.model.SeqCellOpFactory`,
    or a ``functools.partial`` with a ``channels`` / ``hidden`` keyword (NNI's nasnet style)."""
    for name in _WIDTH_FIELDS:
        if dataclasses.is_dataclass(factory) and hasattr(factory, name):
            return name, getattr(factory, name)
        if isinstance(factory, functools.partial) and name in factory.keywords:
            return name, factory.keywords[name]
    raise TypeError(
        f"a partial-channel cell needs op factories that state their width ({' or '.join(_WIDTH_FIELDS)}), "
        f"got {factory!r}"
    )


def _with_width(factory: Any, name: str, width: int) -> Any:
    if isinstance(factory, functools.partial):
        return functools.partial(factory.func, *factory.args, **{**factory.keywords, name: width})
    return dataclasses.replace(factory, **{name: width})


def narrowed_factories(op_factory: Mapping[str, Any], k: int, label: str) -> dict[str, Any]:
    """The cell's op factories rebuilt ``1/k`` as wide (a :class:`ConfigError` naming
    :data:`PARTIAL_CHANNELS_KEY` when a width does not split into ``k`` usable parts)."""
    out = {}
    for op, factory in op_factory.items():
        name, width = _factory_width(factory)
        problem = partial_width_problem(width, k, bidirectional=name == "hidden")
        if problem:
            raise ConfigError(f"{PARTIAL_CHANNELS_KEY} = {k}: cell {label!r}: {problem}")
        out[op] = _with_width(factory, name, width // k)
    return out


def skip_factory(op_factory: Mapping[str, Any]) -> Any:
    """The factory of the cell's ``skip_connect`` (identity, or ``FactorizedReduce`` on a
    stride-2 edge): the space's, whether or not the scope offers the op, else the cell's own."""
    factory = next(iter(op_factory.values()))
    if isinstance(factory, (CnnCellOpFactory, SeqCellOpFactory)):
        return dataclasses.replace(factory, op=SKIP_OP)
    if SKIP_OP in op_factory:
        return op_factory[SKIP_OP]
    raise TypeError(
        f"an auxiliary-skip cell needs a {SKIP_OP!r} op or the emoDARTS space's factories"
    )


class PartialChannelCell(SummedMixedCell):
    """PC-DARTS's mixed cell: partial channel connections plus edge normalisation.

    ``mutate_kwargs["partial_channels"]`` is K. The candidates are built ``1/K`` as wide
    (:func:`narrowed_factories`); the partial axis is the cell's ``concat_dim`` (channels of
    a CNN cell, features of a SeqNN cell). β, one vector per node over its incoming edges,
    is shared through ``memo`` by every cell of the same label, like α.
    """

    _arch_parameter_names: list[str] = ["_arch_alpha", "_arch_beta"]

    def __init__(
        self,
        op_factory,
        num_nodes,
        num_ops_per_node,
        num_predecessors,
        preprocessor,
        postprocessor,
        concat_dim,
        memo,
        mutate_kwargs,
        label,
    ) -> None:
        k = int(mutate_kwargs.get("partial_channels", DEFAULT_PARTIAL_CHANNELS))
        super().__init__(
            narrowed_factories(op_factory, k, label),
            num_nodes,
            num_ops_per_node,
            num_predecessors,
            preprocessor,
            postprocessor,
            concat_dim,
            memo,
            mutate_kwargs,
            label,
        )
        self.partial_channels = k
        self._arch_beta = nn.ParameterDict()
        for i in range(num_predecessors, num_nodes + num_predecessors):
            key = f"{self.label}/{i}/edge_norm"  # never a choice label: nothing else reads it
            if key not in memo:
                memo[key] = nn.Parameter(torch.randn(i) * 1e-3)  # as the reference's betas
            self._arch_beta[f"{self.label}/{i}"] = memo[key]

    def edge_weights(self, node: int) -> torch.Tensor:
        """Edge normalisation of ``node``: ``softmax(β)`` over its incoming edges."""
        return self._softmax(self._arch_beta[f"{self.label}/{node}"])

    def edge(self, node: int, source: int, x: torch.Tensor) -> torch.Tensor:
        """Ops on the first ``C/K`` channels, the rest bypassed, then channel shuffle."""
        k, dim = self.partial_channels, self.concat_dim
        width = x.size(dim) // k
        mixed = super().edge(node, source, x.narrow(dim, 0, width))
        if k == 1:  # nothing bypasses: DARTS with edge normalisation
            return mixed
        bypass = x.narrow(dim, width, x.size(dim) - width)
        if mixed.shape[dim + 1 :] != bypass.shape[dim + 1 :]:  # stride 2: pool the bypass too
            bypass = F.max_pool2d(bypass, 2, 2, ceil_mode=True)
        return channel_shuffle(torch.cat([mixed, bypass], dim), k, dim)

    def node(self, node: int, states: list[torch.Tensor]) -> torch.Tensor:
        """``Σ_j softmax(β_node)_j · edge(j → node)``."""
        beta = self.edge_weights(node)
        return sum(beta[j] * self.edge(node, j, states[j]) for j in range(node))  # type: ignore[return-value]

    def edge_scores(self, node: int) -> list[tuple[float, str]]:
        """Per incoming edge of ``node``: the best op and its weight ``softmax(α)·softmax(β)``
        (``none`` excluded), what PC-DARTS's ``genotype()`` ranks edges by."""
        beta = self.edge_weights(node).detach()
        out = []
        for j in range(node):
            probs = self._softmax(self.edge_alpha(node, j)).detach()
            weights = probs[: len(self.op_names)] * beta[j]  # the last slot is "none"
            best = int(torch.argmax(weights))
            out.append((float(weights[best]), self.op_names[best]))
        return out

    def export(self, memo):
        """The ``num_ops_per_node`` strongest distinct input edges of each node, each with its
        best op, ranked by :meth:`edge_scores` (PC-DARTS's genotype)."""
        exported: dict[str, Any] = {}
        for i in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            labels = [
                (f"{self.label}/op_{i}_{k}", f"{self.label}/input_{i}_{k}")
                for k in range(self.num_ops_per_node)
            ]
            if all(op in memo and inp in memo for op, inp in labels):
                continue  # another cell of this label exported it
            scores = self.edge_scores(i)
            ranked = sorted(range(i), key=lambda j: (-scores[j][0], j))
            for k, (op_label, input_label) in enumerate(labels):
                j = ranked[k % len(ranked)]  # as NNI: reuse inputs when a node has too few
                exported[op_label] = scores[j][1]
                exported[input_label] = [j]
        return exported


class AuxiliarySkipCell(SummedMixedCell):
    """DARTS-'s mixed cell: every edge adds ``skip_weight · skip(x)`` outside the α mixture.

    ``skip_weight`` is set by :class:`DartsMinusModule` at the start of each epoch. The skip
    of an edge is the space's ``skip_connect`` at that edge (identity, ``FactorizedReduce`` on
    a stride-2 edge, as the reference); its weights train with the other weights.
    """

    def __init__(
        self,
        op_factory,
        num_nodes,
        num_ops_per_node,
        num_predecessors,
        preprocessor,
        postprocessor,
        concat_dim,
        memo,
        mutate_kwargs,
        label,
    ) -> None:
        skip = skip_factory(op_factory)
        super().__init__(
            op_factory,
            num_nodes,
            num_ops_per_node,
            num_predecessors,
            preprocessor,
            postprocessor,
            concat_dim,
            memo,
            mutate_kwargs,
            label,
        )
        self.skip_weight = 1.0
        self.auxiliary_skip = nn.ModuleList(
            nn.ModuleList(skip(i, 0, j) for j in range(i))
            for i in range(num_predecessors, num_nodes + num_predecessors)
        )

    def edge(self, node: int, source: int, x: torch.Tensor) -> torch.Tensor:
        """The α mixture plus the decaying auxiliary skip."""
        mixed = super().edge(node, source, x)
        if self.skip_weight == 0.0:
            return mixed
        skip = self.auxiliary_skip[node - self.num_predecessors][source]
        return mixed + self.skip_weight * skip(x)


def _cell_hook(cell_cls: type[SummedMixedCell], **extra: Any):
    """A mutation hook that replaces each NNI ``Cell`` with ``cell_cls`` (``extra`` goes to its
    ``mutate_kwargs``); NNI's hooks handle everything else."""

    def hook(module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]):
        return cell_cls.mutate(module, name, memo, {**mutate_kwargs, **extra})

    return hook


class PCDARTS(DARTS):
    """PC-DARTS: first-order DARTS on :class:`PartialChannelCell` s.

    ``partial_channels`` is K (default 4, the paper's CIFAR-10 setting); every other
    parameter is :class:`emodarts_nni.strategy.darts.first_order.DARTS`'s.
    """

    def __init__(self, *, partial_channels: int = DEFAULT_PARTIAL_CHANNELS, **kwargs: Any) -> None:
        k = int(checked("partial_channels", partial_channels, INT_POS))
        super().__init__(**kwargs)
        self.partial_channels = k

    def default_mutation_hooks(self):  # noqa: D102
        hook = _cell_hook(PartialChannelCell, partial_channels=self.partial_channels)
        return [hook, *super().default_mutation_hooks()]


class DartsMinusModule(FrugalDartsModule):
    """:class:`FrugalDartsModule` that sets the auxiliary skips' weight at each epoch start."""

    def __init__(
        self,
        training_module,
        *,
        auxiliary_skip_weight: float = 1.0,
        decay_epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(training_module, **kwargs)
        self.initial_skip_weight = auxiliary_skip_weight
        self.decay_epochs = decay_epochs

    def skip_weight(self) -> float:
        """The coefficient of the current epoch (:func:`auxiliary_skip_weight`)."""
        epochs = self.decay_epochs or self.trainer.max_epochs
        return auxiliary_skip_weight(self.trainer.current_epoch, epochs, self.initial_skip_weight)

    def on_train_epoch_start(self):  # noqa: D102
        weight = self.skip_weight()
        for module in self.supernet_modules():
            if isinstance(module, AuxiliarySkipCell):
                module.skip_weight = weight
        self.log("darts_minus/skip_weight", weight)
        return super().on_train_epoch_start()


class DartsMinus(DARTS):
    """DARTS-: first-order DARTS on :class:`AuxiliarySkipCell` s.

    ``auxiliary_skip_weight`` is the coefficient's start (1.0, the reference's
    ``skip_beta``); ``decay_epochs`` the epochs over which it falls to 0 (``None``: the
    search's epochs, as the reference's ``decay_max_epoch`` = its 50 search epochs).
    """

    def __init__(
        self,
        *,
        auxiliary_skip_weight: float = 1.0,
        decay_epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        weight = checked("auxiliary_skip_weight", auxiliary_skip_weight, NONNEG)
        if decay_epochs is not None:
            checked("decay_epochs", decay_epochs, _DECAY_EPOCHS)
        super().__init__(**kwargs)
        self.auxiliary_skip_weight = weight
        self.decay_epochs = decay_epochs

    def default_mutation_hooks(self):  # noqa: D102
        return [_cell_hook(AuxiliarySkipCell), *super().default_mutation_hooks()]

    def configure_oneshot_module(self, training_module):  # noqa: D102
        return DartsMinusModule(
            training_module,
            auxiliary_skip_weight=self.auxiliary_skip_weight,
            decay_epochs=self.decay_epochs,
            **self.module_kwargs(),
        )


__all__ = [
    "AuxiliarySkipCell",
    "DartsMinus",
    "DartsMinusModule",
    "PCDARTS",
    "PartialChannelCell",
    "auxiliary_skip_weight",
    "channel_shuffle",
]
