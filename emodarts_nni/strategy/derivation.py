"""DARTS's derivation of a discrete cell from its α (torch-free): the one rule every
differentiable strategy exports with and every collapse diagnostic reads.

Liu, Simonyan and Yang, *DARTS*, ICLR 2019, Sec. 2.4, as their code does it
(quark0/darts ``cnn/model_search.py``, ``genotype()``): for each intermediate node,

1. weigh each incoming edge by its strongest operation other than ``none``, in the
   softmax of **that edge's** α (PC-DARTS, Xu et al. ICLR 2020: times the edge's
   normalised β);
2. keep the ``k`` strongest edges (k = 2 in DARTS; ties go to the earlier input, as
   Python's stable sort does in their code);
3. each kept edge takes that strongest op.

NNI's ``DifferentiableMixedCell.export`` ranks a node's (op, input) pairs by **raw α across
edges** instead, which can pick a different cell; no user of this product needs that rule,
so it is not offered. A node with fewer inputs than ``k`` reuses them in rank order (as NNI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from emodarts_nni.space.genotype import (
    OPS_PER_NODE,
    alpha_tables,
    beta_tables,
    cell_sort_key,
    input_label,
    op_label,
    parse_edge,
)
from emodarts_nni.space.op_names import NONE_OP, PARAMETER_FREE_OPS

T = TypeVar("T")


@dataclass(frozen=True)
class DerivedEdge:
    """One kept edge of a node: ``source → node`` through ``op``, with its ``strength``."""

    source: int
    op: str
    strength: float


def strongest_op(probabilities: Mapping[str, float]) -> tuple[str, float]:
    """The strongest op of one edge other than ``none``, and its weight.

    Ties go to an op with weights before a parameter-free one (an exactly uniform edge, as
    at initialisation, is no evidence of collapse), then to the first name in alphabetical
    order, so that the answer does not depend on the order the ops come in (the scope's
    order in the supernet, the sorted columns of ``history.csv``).
    """
    candidates = [(op, float(p)) for op, p in probabilities.items() if op != NONE_OP]
    if not candidates:
        raise ValueError("an edge with no op other than 'none' cannot be derived")
    return min(candidates, key=lambda c: (-c[1], c[0] in PARAMETER_FREE_OPS, c[0]))


def derive_node(
    edges: Mapping[int, Mapping[str, float]],
    k: int,
    edge_weights: Mapping[int, float] | None = None,
) -> list[DerivedEdge]:
    """The ``k`` kept edges of one node, strongest first.

    ``edges`` maps each input index to that edge's softmax(α) per op name (``none``
    included or not: it is never chosen); ``edge_weights`` (PC-DARTS's β) scale each edge.
    """
    if not edges:
        raise ValueError("a node without incoming edges cannot be derived")
    scored = []
    for source in sorted(edges):
        op, p = strongest_op(edges[source])
        weight = 1.0 if edge_weights is None else float(edge_weights[source])
        scored.append(DerivedEdge(source, op, p * weight))
    ranked = sorted(scored, key=lambda e: -e.strength)  # stable: ties keep input order
    return [ranked[i % len(ranked)] for i in range(k)]


def derive_cell(
    cell: str,
    tables: Mapping[int, Mapping[int, Mapping[str, float]]],
    k: int,
    edge_weights: Mapping[int, Mapping[int, float]] | None = None,
) -> dict[str, object]:
    """NNI choice labels → values of the derived cell ``cell``.

    ``tables[node][source]`` is the softmax(α) of edge ``source → node`` per op;
    ``edge_weights[node][source]`` PC-DARTS's β of that edge. The result has the shape of
    an NNI export: ``{"<cell>/op_<node>_<i>": op, "<cell>/input_<node>_<i>": [source]}``.
    """
    choices: dict[str, object] = {}
    for node in sorted(tables):
        weights = None if edge_weights is None else edge_weights[node]
        for i, edge in enumerate(derive_node(tables[node], k, weights)):
            choices[op_label(cell, node, i)] = edge.op
            choices[input_label(cell, node, i)] = [edge.source]
    return choices


def by_node(edges: Mapping[str, T]) -> dict[int, dict[int, T]]:
    """``{"<node>_<source>": x}`` (edges as the history's columns name them, see
    :func:`~emodarts_nni.space.genotype.parse_edge`) as ``{node: {source: x}}``; a key that
    is not an edge is left out."""
    out: dict[int, dict[int, T]] = {}
    for edge, value in edges.items():
        where = parse_edge(edge)
        if where is not None:
            out.setdefault(where[0], {})[where[1]] = value
    return out


def derive_architecture(row: Mapping[str, Any], k: int = OPS_PER_NODE) -> dict[str, object]:
    """The architecture the search exports for the α (and PC-DARTS's β) of one history row:
    :func:`derive_cell` of every cell with α columns (``{}`` for a row without α)."""
    betas = beta_tables(row)
    architecture: dict[str, object] = {}
    for cell, edges in sorted(alpha_tables(row).items(), key=lambda c: cell_sort_key(c[0])):
        weights = by_node(betas[cell]) if cell in betas else None
        architecture.update(derive_cell(cell, by_node(edges), k, weights))
    return architecture


__all__ = [
    "DerivedEdge",
    "by_node",
    "derive_architecture",
    "derive_cell",
    "derive_node",
    "strongest_op",
]
