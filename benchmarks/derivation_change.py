"""How many exported cells DARTS's derivation changes, against NNI's raw-α export rule.

Until the DARTS derivation (``emodarts_nni/strategy/derivation.py``) every differentiable
strategy exported through NNI's ``DifferentiableMixedCell.export``, which ranks a node's
(op, input) pairs by raw α across edges; DARTS ranks each edge by its strongest op other
than ``none`` in that edge's softmax(α). This script runs the search stage of a config for
each fold asked (one thread), keeps the raw α of every edge at export time, and compares

* NNI's rule, reimplemented here from the raw α (only here: the product no longer has it;
  checked against NNI's own method on the same cells), with
* DARTS's derivation of the last search row of ``history.csv``
  (:func:`~emodarts_nni.strategy.derivation.derive_architecture`), which must equal the run's
  ``architecture.json``.

A cell *differs* when some node keeps other (input, op) pairs; a node whose pairs are the
same but listed in another order (``op_3_0`` and ``op_3_1`` swapped) is the same cell and
counted apart, as *order only*.

    python benchmarks/derivation_change.py experiments/quickstart.yaml --folds 0 1 2 3 4 \\
        --out /tmp/dq/runs --json benchmarks/results-derivation-quickstart.json
    python benchmarks/derivation_change.py experiments/quickstart.yaml --folds 0 1 2 3 4 \\
        --set space.cnn_nodes=4 --set space.seq_nodes=3 --set features.n_mfcc=20 \\
        --set features.n_mels=32 --set features.pooled_frames=32 --set trainer.progress=false \\
        --out /tmp/dp/runs --json benchmarks/results-derivation-paper-nodes.json

Measured (1 thread, shared 2-core machine, 130–200 s a fold): the quickstart at its sizes
(2 CNN, 2 SeqNN nodes, 10 search epochs), 1 of 15 cells differs (fold 3's reduction cell:
node 3 keeps input 2 where NNI kept input 1), 1 of 30 nodes, and 4 nodes list the same
pairs in another order; with the paper's node count (4 CNN, 3 SeqNN nodes, 20 × 32
features), 2 of 15 cells (fold 0's reduce, fold 2's normal), 2 of 55 nodes, 2 in another
order. With 2-node cells only node 3 can differ: node 2 keeps both its inputs under either
rule, and within an edge both pick the same op (softmax keeps α's order).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from emodarts_nni.config.overrides import load_config_with
from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.pipeline.run import run_pipeline
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.space.genotype import OPS_PER_NODE, cell_edges, cell_kinds, parse_edge
from emodarts_nni.space.op_names import NONE_OP
from emodarts_nni.strategy.derivation import derive_architecture
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell

with quiet_nni_import():
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell

#: Raw α at export, ``{cell: {"<node>_<source>": {op: α}}}``, and NNI's own export of them.
CAPTURED: dict[str, Any] = {"raw": {}, "nni": {}}


def _capturing_export(original: Any) -> Any:
    def export(self: SummedMixedCell, memo: dict[str, Any]) -> dict[str, Any]:
        for name, alpha in self._arch_alpha.items():
            cell, _, edge = name.partition("/")
            values = alpha.detach().float().cpu().tolist()
            names = [*self.op_names, *[NONE_OP] * (len(values) - len(self.op_names))]
            CAPTURED["raw"].setdefault(cell, {})[edge] = dict(zip(names, values, strict=False))
        CAPTURED["nni"].update(DifferentiableMixedCell.export(self, dict(CAPTURED["nni"])))
        return original(self, memo)

    return export


def nni_rule(cell: str, edges: Mapping[str, Mapping[str, float]], k: int) -> dict[str, Any]:
    """NNI 3.0's ``DifferentiableMixedCell.export`` on raw α: per node every (α, input, op)
    (``none`` left out) sorted descending, the first pair of each input moved to the front in
    that order, the first ``k`` taken."""
    nodes: dict[int, list[tuple[float, int, str]]] = {}
    for edge, alphas in edges.items():
        node, source = parse_edge(edge) or (None, None)
        if node is None:
            continue
        nodes.setdefault(node, []).extend(
            (a, source, op) for op, a in alphas.items() if op != NONE_OP
        )
    out: dict[str, Any] = {}
    for node, weights in sorted(nodes.items()):
        weights.sort(reverse=True)
        first = sorted(
            weights.index(next(w for w in weights if w[1] == j)) for j in {w[1] for w in weights}
        )
        ordered = [weights[i] for i in first] + [w for i, w in enumerate(weights) if i not in first]
        for i in range(k):
            _, source, op = ordered[i % len(ordered)]
            out[f"{cell}/op_{node}_{i}"] = op
            out[f"{cell}/input_{node}_{i}"] = [source]
    return out


def compare(nni: Mapping[str, Any], darts: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per cell kind: whether the cells differ, which nodes differ, which differ in order only."""
    out: dict[str, dict[str, Any]] = {}
    for cell in cell_kinds(darts):
        a = {(e.node, e.k): (e.source, e.op) for e in cell_edges(nni, cell)}
        b = {(e.node, e.k): (e.source, e.op) for e in cell_edges(darts, cell)}
        nodes = sorted({node for node, _ in b})
        differ, order_only = [], []
        for node in nodes:
            pa = [a[key] for key in sorted(a) if key[0] == node]
            pb = [b[key] for key in sorted(b) if key[0] == node]
            if sorted(pa) != sorted(pb):
                differ.append(node)
            elif pa != pb:
                order_only.append(node)
        out[cell] = {
            "differs": bool(differ),
            "nodes": len(nodes),
            "nodes_differ": differ,
            "nodes_order_only": order_only,
            "nni": {f"{n}": [p for key, p in sorted(a.items()) if key[0] == n] for n in differ},
            "darts": {f"{n}": [p for key, p in sorted(b.items()) if key[0] == n] for n in differ},
        }
    return out


def _cell_line(cell: str, v: Mapping[str, Any]) -> str:
    order = len(v["nodes_order_only"])
    extra = f", {order} order only" if order else ""
    state = "DIFFERS" if v["differs"] else "same"
    return f"{cell}: {state} ({len(v['nodes_differ'])}/{v['nodes']} nodes{extra})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--folds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    SummedMixedCell.export = _capturing_export(SummedMixedCell.export)  # type: ignore[method-assign]
    results: dict[str, Any] = {"config": args.config, "sets": args.sets, "folds": {}}
    for fold in args.folds:
        sets = [*args.sets, f"splits.fold={fold}", "trainer.num_threads=1", "features.workers=1"]
        sets.append(f"output.dir={args.out}")
        cfg = load_config_with(args.config, sets)
        run_dir = args.out / f"fold{fold}"
        CAPTURED["raw"], CAPTURED["nni"] = {}, {}
        started = time.perf_counter()
        run_pipeline(cfg, run_dir, stages=("search",))
        seconds = time.perf_counter() - started
        folder = RunFolder(run_dir)
        exported = json.loads(folder.architecture.read_text())["architecture"]
        last = [row for row in folder.read_history() if row.get("stage") == "search"][-1]
        darts = derive_architecture(last)
        assert darts == exported, "architecture.json is not the derivation of the last row"
        nni: dict[str, Any] = {}
        for cell, edges in CAPTURED["raw"].items():
            nni.update(nni_rule(cell, edges, OPS_PER_NODE))
        assert nni == CAPTURED["nni"], "the reimplemented NNI rule differs from NNI's method"
        cells = compare(nni, darts)
        results["folds"][fold] = {
            "seconds": round(seconds, 1),
            "epochs": last["epoch"] + 1,
            "cells": cells,
        }
        summary = ", ".join(_cell_line(c, v) for c, v in cells.items())
        print(f"fold {fold} ({seconds:.0f} s): {summary}", flush=True)
    folds = results["folds"].values()
    totals = {
        "cells": sum(len(f["cells"]) for f in folds),
        "cells_differ": sum(c["differs"] for f in folds for c in f["cells"].values()),
        "nodes": sum(c["nodes"] for f in folds for c in f["cells"].values()),
        "nodes_differ": sum(len(c["nodes_differ"]) for f in folds for c in f["cells"].values()),
        "nodes_order_only": sum(
            len(c["nodes_order_only"]) for f in folds for c in f["cells"].values()
        ),
    }
    results["totals"] = totals
    print(
        f"total: {totals['cells_differ']} of {totals['cells']} cells differ; "
        f"{totals['nodes_differ']} of {totals['nodes']} nodes keep other (input, op) pairs, "
        f"{totals['nodes_order_only']} the same pairs in another order"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
