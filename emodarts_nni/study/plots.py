"""The study's pictures (PNG), drawn with the helpers of :mod:`emodarts_nni.reporting.plots`.

- the Fig. 7 scatter: mean UA against its std over folds, marker area ∝ parameters;
- per-arm box plots of UA over folds;
- the operations the searched architectures chose most often, per cell kind;
- α over search epochs per searched arm (the folds' softmaxed α averaged per epoch).

Each function returns the PNG's path, or ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from emodarts_nni.common.units import number
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.reporting.plots import annotate_points, plot_alpha_evolution, save_figure
from emodarts_nni.space import genotype
from emodarts_nni.study.arms import is_searched
from emodarts_nni.study.comparisons import fold_values


def plot_study_scatter(summary: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Fig. 7: mean UA (%) against std of UA (%) per (corpus, scope, arm); size = parameters."""
    points = [r for r in summary if number(r.get("ua_mean")) is not None]
    if not points:
        return None
    params = np.array([number(r.get("params_mean")) or 0.0 for r in points])
    area = (
        40 + 360 * np.sqrt(params / params.max()) if params.max() > 0 else np.full(len(points), 60)
    )
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    labels = []
    for r, size in zip(points, area, strict=True):
        x = 100 * (number(r.get("ua_std")) or 0.0)
        y = 100 * float(r["ua_mean"])
        ax.scatter([x], [y], s=float(size), alpha=0.6, zorder=3)
        label = f"{r['arm']} / {r['scope']}" + (f" ({r['corpus']})" if r.get("corpus") else "")
        labels.append((x, y, label))
    ax.set_xlabel("UA std over folds (%)")
    ax.set_ylabel("mean UA (%)")
    ax.set_title("Accuracy, its spread over folds, and model size (marker area)")
    ax.grid(alpha=0.3)
    ax.margins(x=0.25, y=0.15)
    ax.set_xlim(left=-0.05 * max(ax.get_xlim()[1], 1.0))  # std >= 0: no empty negative axis
    annotate_points(ax, labels)
    return save_figure(fig, path)


def plot_fold_boxes(rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """UA (%) over folds per (arm, scope, corpus), one box each, one point per fold: a
    fold's value is the mean over its seeds and random architectures
    (:func:`~emodarts_nni.study.comparisons.fold_values`), as in the report's tests."""
    members: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        label = f"{r['arm']}\n{r['scope']}" + (f"\n{r['corpus']}" if r.get("corpus") else "")
        members.setdefault(label, []).append(r)
    groups = {
        label: [100 * float(v) for v in fold_values(group).values()]
        for label, group in members.items()
    }
    if not groups:
        return None
    fig = Figure(figsize=(max(6.0, 1.3 * len(groups)), 4.8), layout="constrained")
    ax = fig.add_subplot()
    ax.boxplot(list(groups.values()), showmeans=True)
    ax.set_xticks(range(1, len(groups) + 1), list(groups), fontsize=7)
    for i, values in enumerate(groups.values(), 1):
        ax.scatter(np.full(len(values), i), values, s=12, color="0.3", zorder=3)
    ax.set_ylabel("test UA (%)")
    ax.set_title("UA over folds per arm")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def _searched_architectures(study_dir: Path, rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The ``architecture`` field of every searched cell's ``architecture.json``."""
    found = []
    for r in rows:
        path = RunFolder(study_dir / r["run_dir"]).architecture
        if is_searched(r["arm"]) and path.is_file():
            found.append(json.loads(path.read_text())["architecture"])
    return found


def plot_chosen_ops(study_dir: Path, rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """How often each operation was chosen in the searched architectures, per cell kind."""
    counts: dict[str, Counter] = {}
    for architecture in _searched_architectures(study_dir, rows):
        for label, value in architecture.items():
            parsed = genotype.parse_label(label)
            if parsed is not None and parsed.kind == "op":
                counts.setdefault(parsed.cell, Counter())[str(value)] += 1
    if not counts:
        return None
    kinds = sorted(counts, key=genotype.cell_sort_key)
    fig = Figure(figsize=(5.0 * len(kinds), 4.4), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds, strict=True):
        ops = counts[kind].most_common()
        ax.barh([op for op, _ in ops][::-1], [n for _, n in ops][::-1], color="#1f77b4")
        ax.set_title(f"{kind} cell: chosen operations")
        ax.set_xlabel("edges chosen (all searched cells)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 edges
    return save_figure(fig, path)


def plot_alpha_per_arm(
    study_dir: Path, rows: Sequence[Mapping[str, Any]], out_dir: Path
) -> dict[str, Path]:
    """One α-evolution picture per searched arm and scope: each epoch's α averaged over folds."""
    groups: dict[str, list[Path]] = {}
    for r in rows:
        if is_searched(r["arm"]):
            groups.setdefault(f"{r['arm']}-{r['scope']}", []).append(study_dir / r["run_dir"])
    written: dict[str, Path] = {}
    for name, folders in groups.items():
        by_epoch: dict[float, dict[str, list[float]]] = {}
        for folder in folders:
            for row in RunFolder(folder).read_history():
                if row.get("stage") != "search":
                    continue
                slot = by_epoch.setdefault(float(row.get("epoch", 0)), {})
                for column, value in row.items():
                    is_alpha = (
                        genotype.parse_alpha_column(column) is not None
                        or genotype.parse_choice_column(column) is not None  # the readout
                    )
                    if is_alpha and number(value) is not None:
                        slot.setdefault(column, []).append(float(value))
        averaged = [
            {"epoch": epoch, **{c: float(np.mean(v)) for c, v in columns.items()}}
            for epoch, columns in sorted(by_epoch.items())
        ]
        picture = plot_alpha_evolution(averaged, out_dir / f"alpha_{name}.png")
        if picture is not None:
            written[f"alpha/{name}"] = picture
    return written


__all__ = ["plot_alpha_per_arm", "plot_chosen_ops", "plot_fold_boxes", "plot_study_scatter"]
