"""PC-DARTS's mixed cell: partial channel connections and edge normalisation.

Xu, Xie, Zhang, Chen, Qi, Tian and Xiong, *PC-DARTS: Partial Channel Connections for
Memory-Efficient Architecture Search*, ICLR 2020 (arXiv:1907.05737); reference code
github.com/yuhuixu1993/PC-DARTS ``model_search.py``.

On every edge only the first ``1/K`` of the channels go through the candidate ops, built
``1/K`` as wide; the rest bypass (through a 2×2 stride-2 max-pool on a stride-2 edge) and the
two parts are concatenated and channel-shuffled in ``K`` groups. *Edge normalisation*: each
node weighs its incoming edges by ``softmax(β)`` over those edges, and the export ranks the
edges into a node by ``max_op softmax(α)·softmax(β)`` (``none`` excluded), as the reference's
``genotype()`` does: DARTS's derivation (:mod:`emodarts_nni.strategy.derivation`) with
:meth:`PartialChannelCell.derivation_weights` as the edge weights. The partial axis is the
cell's concatenation axis: channels in the CNN cells, features in the SeqNN cells (see
``docs/strategies.md``).

The cell exists only in the supernet: the exported architecture is the usual dict and the
retrained model is a fresh, full-width :class:`~emodarts_nni.space.model.EmoDartsSpace`. The
strategy that trains it is :class:`emodarts_nni.strategy.darts.pc.PCDARTS`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.space.args import partial_width_problem
from emodarts_nni.strategy.defaults import PC_DARTS_PARTIAL_CHANNELS as DEFAULT_PARTIAL_CHANNELS
from emodarts_nni.strategy.defaults import PC_DARTS_PARTIAL_CHANNELS_KEY as PARTIAL_CHANNELS_KEY
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell

_WIDTH_FIELDS = ("channels", "hidden")


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
        op_factory: Mapping[str, Callable[..., nn.Module]],
        num_nodes: int,
        num_ops_per_node: int,
        num_predecessors: int,
        preprocessor: nn.Module,
        postprocessor: nn.Module,
        concat_dim: int,
        memo: dict[str, Any],
        mutate_kwargs: dict[str, Any],
        label: str,
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

    def derivation_weights(self, node: int) -> dict[int, float]:
        """PC-DARTS's derivation weighs each edge into ``node`` by its normalised β (the
        reference's ``genotype()`` ranks edges by ``max_op softmax(α)·softmax(β)``); the
        numbers the history's β columns hold."""
        beta = self._arch_beta[f"{self.label}/{node}"].detach().float()
        return dict(enumerate(torch.softmax(beta, dim=-1).cpu().tolist()))


__all__ = ["PartialChannelCell", "channel_shuffle", "narrowed_factories"]
