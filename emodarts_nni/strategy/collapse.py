"""Collapse of a differentiable search, seen in α while it happens, and DARTS+'s early stop.

DARTS drifts towards parameter-free ops: its normal cell fills with ``skip_connect`` and
the searched network stops learning (the emoDARTS paper, Sec. VI-B; Liang et al. 2019,
"DARTS+", arXiv:1909.06035). This module measures that from the softmaxed α of each
search epoch, per cell kind (``normal``, ``reduce``, ``seq``):

``param_free``
    the share of parameter-free ops (:data:`~emodarts_nni.space.op_names.PARAMETER_FREE_OPS`) in the
    cell the search would export now: exactly the cell its ``architecture.json`` would hold,
    derived by the export's own rule (:func:`~emodarts_nni.strategy.derivation.derive_node`:
    on every edge its strongest op other than ``none``, PC-DARTS's edges weighed by their
    normalised β, and per node the :data:`~emodarts_nni.space.genotype.OPS_PER_NODE`
    strongest edges).
``skips``
    how many of those ops are ``skip_connect``.
``entropy``
    the mean over edges of the entropy of softmax(α) divided by its maximum, log(number of
    candidates): 1 is uniform (nothing decided yet), 0 one op with all the weight.

A cell is **collapsed** when at least :data:`COLLAPSE_SHARE` (half) of its exported ops are
parameter-free *and* its α have left uniform (``entropy`` below :data:`DECIDED_ENTROPY`).
Half, not DARTS+'s "two skip connections", because the rule must hold for every cell size
(the quickstart's cells have 2 nodes, 4 ops; the paper's 4 nodes, 8 ops) and for the SeqNN
cell, where one skip over two LSTMs is already a weak cell. The entropy gate keeps the
warning quiet while α are still nearly uniform: the exported cell is then a random draw
(in which a half of pools and skips is common) and not a collapse. Reduction cells are
measured but never flagged: all-pooling reduction cells are DARTS's usual, healthy result.

The metrics are computed from the ``alpha/<cell>/<edge>/<op>`` (and PC-DARTS's
``beta/<cell>/<edge>``) columns that :class:`~emodarts_nni.training.module.EpochRecorder`
takes from any module with NNI differentiable choices, so every α-based strategy gets them
and strategies without α (ENAS, random one-shot) get none.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl

from emodarts_nni.space import genotype
from emodarts_nni.space.genotype import alpha_tables, beta_tables
from emodarts_nni.space.op_names import NONE_OP, PARAMETER_FREE_OPS, SKIP_OP
from emodarts_nni.strategy.derivation import by_node, derive_node

log = logging.getLogger("emodarts")

#: Share of parameter-free ops in an exported normal/seq cell from which it is collapsed.
COLLAPSE_SHARE = 0.5
#: Mean normalised α entropy below which a cell's α count as decided (see the module doc).
DECIDED_ENTROPY = 0.99
#: DARTS+ criterion 1: this many ``skip_connect`` in the normal cell stop the search.
DARTS_PLUS_SKIPS = 2
#: Cell kinds a collapse is flagged for (reduction cells are pools by design).
FLAGGED_CELLS = (genotype.NORMAL_CELL, genotype.SEQ_CELL)
#: Prefix of the collapse columns of a search history: ``collapse/<cell>/<metric>``.
COLLAPSE_PREFIX = "collapse/"


@dataclass(frozen=True)
class CellCollapse:
    """Collapse metrics of one cell kind at one moment of the search."""

    cell: str
    param_free: float
    skips: int
    entropy: float
    exported: tuple[str, ...]  # the ops the cell would export now, by (node, edge strength)
    ranking: tuple[tuple[str, ...], ...]  # per edge: learnable ops, strongest first

    @property
    def collapsed(self) -> bool:
        """Whether this cell counts as collapsed (a flagged kind, see the module doc)."""
        return (
            self.cell in FLAGGED_CELLS
            and self.param_free >= COLLAPSE_SHARE
            and self.entropy < DECIDED_ENTROPY
        )


def _normalised_entropy(probs: Mapping[str, float]) -> float:
    values = [p for p in probs.values() if p > 0]
    total = sum(probs.values())
    if len(probs) < 2 or total <= 0:
        return 0.0
    entropy = -sum((p / total) * math.log(p / total) for p in values)
    return entropy / math.log(len(probs))


def cell_collapse(
    cell: str,
    edges: Mapping[str, Mapping[str, float]],
    edge_weights: Mapping[str, float] | None = None,
) -> CellCollapse:
    """Collapse metrics of ``cell`` from its α table ``{edge: {op: probability}}``.

    ``edge`` is NNI's ``<node>_<source>``; probabilities are softmax(α) of each edge.
    ``edge_weights`` (``{edge: weight}``, PC-DARTS's normalised β) weigh the edges as the
    export does. The exported ops are those of
    :func:`~emodarts_nni.strategy.derivation.derive_node`, node by node, strongest edge
    first: the ``<cell>/op_<node>_<k>`` values of the architecture the search exports.
    """
    ranking: list[tuple[str, ...]] = []
    for edge in sorted(edges, key=lambda e: genotype.parse_edge(e) or (0, 0)):
        candidates = {op: p for op, p in edges[edge].items() if op != NONE_OP}
        ranking.append(
            tuple(
                sorted(
                    (op for op in candidates if op not in PARAMETER_FREE_OPS),
                    key=lambda op: (-candidates[op], op),
                )
            )
        )
    tables = by_node(edges)
    weights = by_node(edge_weights) if edge_weights is not None else None
    exported = [
        kept.op
        for node in sorted(tables)
        for kept in derive_node(
            tables[node], genotype.OPS_PER_NODE, None if weights is None else weights[node]
        )
    ]
    entropies = [_normalised_entropy(probs) for probs in edges.values() if probs]
    return CellCollapse(
        cell=cell,
        param_free=(
            sum(op in PARAMETER_FREE_OPS for op in exported) / len(exported) if exported else 0.0
        ),
        skips=sum(op == SKIP_OP for op in exported),
        entropy=sum(entropies) / len(entropies) if entropies else 1.0,
        exported=tuple(exported),
        ranking=tuple(ranking),
    )


def collapse_metrics(row: Mapping[str, Any]) -> dict[str, CellCollapse]:
    """Per cell kind (in :data:`~emodarts_nni.space.genotype.CELL_ORDER`), the metrics of one
    history row's α (and β); empty when the row has no α (a strategy without them)."""
    tables, betas = alpha_tables(row), beta_tables(row)
    return {
        cell: cell_collapse(cell, tables[cell], betas.get(cell))
        for cell in sorted(tables, key=genotype.cell_sort_key)
    }


def collapse_columns(metrics: Mapping[str, CellCollapse]) -> dict[str, float]:
    """History columns ``collapse/<cell>/{param_free,skips,entropy,collapsed}``."""
    out: dict[str, float] = {}
    for cell, m in metrics.items():
        prefix = f"{COLLAPSE_PREFIX}{cell}/"
        out[prefix + "param_free"] = round(m.param_free, 6)
        out[prefix + "skips"] = m.skips
        out[prefix + "entropy"] = round(m.entropy, 6)
        out[prefix + "collapsed"] = int(m.collapsed)
    return out


def web_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The collapse columns of a history row as flat keys for NNI's web UI.

    ``<cell>_param_free`` and ``<cell>_entropy`` per cell, and ``collapse`` naming the
    collapsed cells (``"seq"``, ``"normal, seq"``) or ``"none"``; empty without α.
    """
    out: dict[str, Any] = {}
    collapsed: list[str] = []
    for column, value in row.items():
        text = str(column)
        if not text.startswith(COLLAPSE_PREFIX):
            continue
        cell, _, metric = text[len(COLLAPSE_PREFIX) :].partition("/")
        if metric in ("param_free", "entropy"):
            out[f"{cell}_{metric}"] = value
        elif metric == "collapsed" and value:
            collapsed.append(cell)
    if out:
        out["collapse"] = ", ".join(collapsed) if collapsed else "none"
    return out


def collapse_summary(history: list[Mapping[str, Any]]) -> dict[str, Any]:
    """For ``metrics.json``: the last search epoch's collapse per cell and its metrics.

    ``{"collapsed": {cell: bool}, "collapse": {cell: {"param_free", "skips", "entropy"}},
    "search_stopped_early": reason or None}``; empty when the search recorded no α.
    """
    rows = [r for r in history if r.get("stage") == "search"]
    last = next(
        (r for r in reversed(rows) if any(str(k).startswith(COLLAPSE_PREFIX) for k in r)), None
    )
    if last is None:
        return {}
    collapsed: dict[str, bool] = {}
    details: dict[str, dict[str, float]] = {}
    for column, value in last.items():
        text = str(column)
        if not text.startswith(COLLAPSE_PREFIX):
            continue
        cell, _, metric = text[len(COLLAPSE_PREFIX) :].partition("/")
        if metric == "collapsed":
            collapsed[cell] = bool(value)
        else:
            details.setdefault(cell, {})[metric] = value
    stop = next((r.get("early_stop") for r in reversed(rows) if r.get("early_stop")), None)
    return {"collapsed": collapsed, "collapse": details, "search_stopped_early": stop}


@dataclass
class EarlyStop:
    """DARTS+'s stopping rule (Liang et al. 2019, arXiv:1909.06035), fed one epoch at a time.

    Stop when the exported normal cell has :data:`DARTS_PLUS_SKIPS` or more
    ``skip_connect`` (once its α are decided, as for the collapse flag), or when the
    ranking of the learnable ops on every edge of every cell has not changed for
    ``stable_epochs`` epochs. :meth:`update` returns the reason to stop, or ``None``.
    """

    stable_epochs: int = 10
    _last_ranking: Any = None
    _stable_for: int = 0
    history: list[str | None] = field(default_factory=list)

    def update(self, metrics: Mapping[str, CellCollapse]) -> str | None:
        """Take one epoch's metrics; the reason to stop now, or ``None``."""
        if not metrics:
            self.history.append(None)
            return None
        reason: str | None = None
        normal = metrics.get(genotype.NORMAL_CELL)
        if (
            normal is not None
            and normal.skips >= DARTS_PLUS_SKIPS
            and normal.entropy < DECIDED_ENTROPY
        ):
            reason = (
                f"normal cell has {normal.skips} {SKIP_OP} (DARTS+ stops at {DARTS_PLUS_SKIPS})"
            )
        ranking = tuple((cell, m.ranking) for cell, m in metrics.items())
        if ranking == self._last_ranking:
            self._stable_for += 1
        else:
            self._last_ranking, self._stable_for = ranking, 0
        if reason is None and self._stable_for >= self.stable_epochs:
            reason = f"op ranking unchanged for {self._stable_for} epochs (DARTS+)"
        self.history.append(reason)
        return reason


class CollapseMonitor(pl.Callback):
    """Measure collapse each search epoch; warn once per collapsed cell; optionally stop.

    :meth:`annotate` adds the ``collapse/...`` columns to an epoch row of
    :class:`~emodarts_nni.training.module.EpochRecorder` (wrap the recorder's ``on_epoch`` with
    it) and logs a WARNING naming a cell the first time it collapses. Placed *after* the
    recorder in the trainer's callbacks, its ``on_train_epoch_end`` stops the trainer when
    ``early_stop`` is on and :class:`EarlyStop` says so (the strategy then exports the
    architecture of that epoch, as DARTS+ does).
    """

    def __init__(self, early_stop: bool = False, stable_epochs: int = 10) -> None:
        super().__init__()
        self.early_stop = early_stop
        self.rule = EarlyStop(stable_epochs)
        self.warned: set[str] = set()
        self.stop_reason: str | None = None
        self._pending: str | None = None

    def annotate(self, row: dict[str, Any]) -> dict[str, Any]:
        """Add the collapse columns (and ``early_stop``: the reason, when stopping) to ``row``."""
        metrics = collapse_metrics(row)
        if not metrics:
            return row
        row.update(collapse_columns(metrics))
        for cell, m in metrics.items():
            if m.collapsed and cell not in self.warned:
                self.warned.add(cell)
                log.warning(
                    "search epoch %s: the %s cell collapsed: %.0f%% of its ops are "
                    "parameter-free (%s)",
                    row.get("epoch"),
                    cell,
                    100 * m.param_free,
                    ", ".join(m.exported),
                )
        reason = self.rule.update(metrics)
        if self.early_stop and reason is not None and self.stop_reason is None:
            self._pending = reason
            row["early_stop"] = reason
        return row

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop the trainer after an epoch whose row said so."""
        if self._pending is not None:
            self.stop_reason, self._pending = self._pending, None
            log.warning(
                "search stopped early after epoch %d: %s", trainer.current_epoch, self.stop_reason
            )
            trainer.should_stop = True


__all__ = [
    "COLLAPSE_SHARE",
    "DARTS_PLUS_SKIPS",
    "DECIDED_ENTROPY",
    "CellCollapse",
    "CollapseMonitor",
    "EarlyStop",
    "alpha_tables",
    "cell_collapse",
    "collapse_columns",
    "collapse_metrics",
    "collapse_summary",
    "web_fields",
]
