"""Pictures of runs and studies, as PNG files (``docs/report.md`` explains how to read them).

Every function draws on its own :class:`matplotlib.figure.Figure` (the Agg canvas, no
``pyplot`` state, never a window), writes the PNG atomically — to a temporary name in the
target folder, then :func:`os.replace` — and returns the path. Functions whose data may
be absent (α of a non-differentiable search, an empty history) return ``None`` instead.

Inputs are the plain contents of a run folder: ``history.csv`` rows (dicts; numbers may
still be strings), ``metrics.json`` values, the ``architecture`` mapping of
``architecture.json``, and summary rows of :func:`emodarts_nni.reporting.runs.summarise`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from emodarts_nni.common.files import atomic_path
from emodarts_nni.common.units import number
from emodarts_nni.space import genotype
from emodarts_nni.space.genotype import CELL_ORDER, alpha_columns, cell_kinds  # noqa: F401 (re-exported)
from emodarts_nni.space.op_names import NONE_OP, SKIP_OP

_DPI = 120


# --------------------------------------------------------------------------- helpers
def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    return path


#: Offsets (points) tried in turn for a point's label, the first that overlaps no other.
_LABEL_OFFSETS = ((6, 4), (6, -11), (6, 15), (6, -22), (6, 26), (6, -33), (6, 37))


def annotate_points(ax: Any, items: Sequence[tuple[float, float, str]], fontsize: int = 8) -> None:
    """Label scatter points ``(x, y, text)`` so that no two labels overlap where it can be
    helped: each label takes the first of a few offsets above and below its point that is
    clear of the labels placed before it. Set the axes' limits before calling."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # the layout the labels are measured in
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for x, y, text in sorted(items, key=lambda item: -item[1]):
        for offset in _LABEL_OFFSETS:
            label = ax.annotate(
                text, (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize
            )
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed) or offset == _LABEL_OFFSETS[-1]:
                break
            label.remove()
        placed.append(box)


def _epoch_axis(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """Epoch numbers of ``rows``; the row index where epochs are missing or repeat."""
    epochs = [number(r.get("epoch")) for r in rows]
    if any(e is None for e in epochs) or len(set(epochs)) != len(epochs):
        return [float(i) for i in range(len(rows))]
    return [float(e) for e in epochs]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- confusion
def plot_confusion_matrix(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    normalise: bool = True,
) -> Path:
    """The confusion matrix (rows = true class, columns = predicted) as a heat map.

    With ``normalise`` each row is divided by its total, so the diagonal reads as the
    per-class recall (its mean is UA); every cell also shows the raw count.
    """
    counts = np.asarray(matrix, dtype=float)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {n} class names")
    totals = counts.sum(axis=1, keepdims=True)
    shown = (
        np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        if normalise
        else counts
    )
    size = 1.6 + 0.9 * n
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.add_subplot()
    vmax = 1.0 if normalise else max(float(counts.max()), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(
        image,
        ax=ax,
        fraction=0.046,
        pad=0.04,
        label="fraction of the true class" if normalise else "utterances",
    )
    for i in range(n):
        for j in range(n):
            text = (
                f"{shown[i, j]:.2f}\n({int(counts[i, j])})" if normalise else f"{int(counts[i, j])}"
            )
            dark = shown[i, j] > 0.6 * vmax
            ax.text(
                j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    ax.set_xticks(range(n), labels=list(class_names), rotation=30, ha="right")
    ax.set_yticks(range(n), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title is None and normalise and n:
        recalls = [shown[i, i] for i in range(n) if totals[i, 0] > 0]
        title = f"UA {100 * np.mean(recalls):.2f} %" if recalls else None
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- α
def plot_alpha_evolution(
    history_rows: Sequence[Mapping[str, Any]], path: str | os.PathLike
) -> Path | None:
    """Softmaxed α per op over search epochs, one panel per cell kind (normal/reduce/seq),
    then one per plain choice the search made (the readout, when it is searched).

    Each line is one op's probability averaged over the cell's edges; the legend is
    sorted by the final value, so the op on top is the one winning most edges' mass.
    ``none`` (the zero op) is dashed. Returns ``None`` when the history holds no α
    (a multi-trial search, a baseline).
    """
    grouped = alpha_columns(history_rows)
    if not grouped:
        return None
    choices = genotype.choice_columns(history_rows)
    grouped.update({label: ops for label, ops in choices.items() if label not in grouped})
    every_column = [c for ops in grouped.values() for cols in ops.values() for c in cols]
    rows = [r for r in history_rows if any(number(r.get(c)) is not None for c in every_column)]
    if not rows:
        return None
    x = _epoch_axis(rows)
    kinds = sorted(grouped, key=genotype.cell_sort_key)
    fig = Figure(figsize=(6.4 * len(kinds), 4.4), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds, strict=True):
        styles = _alpha_line_styles(sorted(grouped[kind]))
        curves: list[tuple[float, str, list[float]]] = []
        for op, columns in grouped[kind].items():
            values = []
            for row in rows:
                found = [v for v in (number(row.get(c)) for c in columns) if v is not None]
                values.append(float(np.mean(found)) if found else float("nan"))
            final = next((v for v in reversed(values) if not math.isnan(v)), float("nan"))
            curves.append((final, op, values))
        curves.sort(key=lambda item: -item[0] if not math.isnan(item[0]) else math.inf)
        for final, op, values in curves:
            ax.plot(
                x,
                values,
                label=f"{op} ({final:.2f})",
                marker="o" if len(x) < 3 else None,  # one or two epochs: points, not lines
                **styles[op],
            )
        top = max((v for _, _, vs in curves for v in vs if not math.isnan(v)), default=1.0)
        n_edges = max(len(cols) for cols in grouped[kind].values())
        if kind in choices:
            ax.set_title(f"{kind} (searched) — softmax(α)")
        else:
            ax.set_title(f"{kind} cell — α mean over {n_edges} edges")
        ax.set_xlabel("search epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(set(x)) == 1:  # a single epoch: an axis around it (not ±0.045), one tick
            ax.set_xlim(x[0] - 1, x[0] + 1)
            ax.set_xticks([x[0]])
        ax.set_ylabel("softmax(α)")
        ax.set_ylim(0.0, 1.08 * top)  # the highest point is inside the frame, not on it
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            title=f"{'choice' if kind in choices else 'op'} (final)",
            title_fontsize=8,
        )
    return save_figure(fig, path)


#: Strong, distinguishable colours (tab10 without its grey, then darker extras).
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39", "#7b4173")  # fmt: skip
#: The paper's op names (Table 2) in a fixed order, so an op has the same colour in every
#: picture. CNN and SeqNN ops never share a cell, so their colours may repeat.
_OP_ORDER = (
    ("max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
     "dil_conv_5x5", "conv_7x1_1x7"),
    ("rnn_1", "rnn_2", "rnn_3", "rnn_4", "rnn_att_1", "rnn_att_2", "lstm_1", "lstm_2",
     "lstm_3", "lstm_4", "lstm_att_1", "lstm_att_2"),
)  # fmt: skip
_FIXED_COLOURS = {NONE_OP: "0.45", SKIP_OP: "#000000"}


def _op_colours(ops: Sequence[str]) -> dict[str, Any]:
    """A colour per op: fixed for the paper's ops, ``none`` grey, ``skip_connect`` black;
    ops outside the paper's tables take the palette entries left free."""
    colours: dict[str, Any] = {}
    for op in ops:
        if op in _FIXED_COLOURS:
            colours[op] = _FIXED_COLOURS[op]
        for family in _OP_ORDER:
            if op in family:
                colours[op] = _PALETTE[family.index(op) % len(_PALETTE)]
    used = set(colours.values())
    free = [c for c in _PALETTE if c not in used] or list(_PALETTE)
    for i, op in enumerate(op for op in sorted(ops) if op not in colours):
        colours[op] = free[i % len(free)]
    return colours


#: SeqNN ops come in RNN/LSTM pairs of the same variant (``rnn_2``/``lstm_2``,
#: ``rnn_att_1``/``lstm_att_1``): in an α plot a variant has one colour and the family a
#: line style, so 14 lines need 6 colours that are easy to tell apart, not 12 that are not.
_SEQ_FAMILIES = (("rnn_", "-"), ("lstm_", ":"))


def _alpha_line_styles(ops: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib line keywords per op for :func:`plot_alpha_evolution`: ``none`` grey and
    dashed, ``skip_connect`` black, SeqNN ops a colour per variant and a style per family,
    every other op its colour from :func:`_op_colours`."""
    colours = _op_colours(ops)
    variants = sorted(
        {
            op.removeprefix(prefix)
            for op in ops
            for prefix, _ in _SEQ_FAMILIES
            if op.startswith(prefix)
        },
        key=lambda v: (v.startswith("att"), v),
    )
    styles: dict[str, dict[str, Any]] = {}
    for op in ops:
        style: dict[str, Any] = {"color": colours[op], "linestyle": "-", "linewidth": 2.2}
        for prefix, linestyle in _SEQ_FAMILIES:
            if op.startswith(prefix):
                variant = variants.index(op.removeprefix(prefix))
                style |= {"color": _PALETTE[variant % len(_PALETTE)], "linestyle": linestyle}
                style["linewidth"] = 2.6 if linestyle == ":" else 2.2
        if op == NONE_OP:
            style |= {"linestyle": "--", "linewidth": 1.4}
        styles[op] = style
    return styles


# --------------------------------------------------------------------------- cell
def cell_edges(architecture: Mapping[str, Any], cell: str) -> list[tuple[int, int, str]]:
    """Edges ``(source, node, op)`` of a derived cell in choice order; sources 0/1 are the
    inputs c_{k-2}/c_{k-1}, nodes count on from 2 (NNI's numbering)."""
    return [(e.source, e.node, e.op) for e in genotype.cell_edges(architecture, cell)]


#: Geometry of the cell diagram, in data units (1 unit = ``_INCH_PER_UNIT`` inches).
_INCH_PER_UNIT = 0.85
_NODE_RADIUS = 0.42
_BOX_SIZE = (1.25, 0.64)
_LABEL_FONT = 8.5
_CHAR_WIDTH = 0.082  # DejaVu Sans at 8.5 pt, in data units
_LABEL_HEIGHT = 0.34


def _bezier(p0: np.ndarray, p2: np.ndarray, rad: float, t: np.ndarray) -> np.ndarray:
    """Points of matplotlib's ``arc3,rad=rad`` quadratic Bézier from ``p0`` to ``p2``."""
    d = p2 - p0
    control = (p0 + p2) / 2 + rad * np.array([d[1], -d[0]])
    t = t[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p2


def _inside(points: np.ndarray, rect: tuple[float, float, float, float]) -> int:
    """How many ``points`` fall in ``rect`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = rect
    return int(
        (
            (points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1)
        ).sum()
    )


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class _CellRouter:
    """Greedy edge routing: for each edge pick the arc bend and label position that avoid
    nodes, earlier labels and earlier edges (a diagram, not an optimiser: good enough for
    the ≤ 2·nodes edges of a DARTS cell)."""

    RADS = (0.0, 0.15, -0.15, 0.3, -0.3, 0.45, -0.45, 0.6, -0.6)
    LABEL_T = (0.5, 0.4, 0.6, 0.3, 0.7)

    def __init__(self, obstacles: dict[Any, tuple[float, float, float, float]]) -> None:
        self.obstacles = obstacles
        self.labels: list[tuple[float, float, float, float]] = []
        self.curves: list[np.ndarray] = []

    def route(
        self, a: Any, b: Any, pa: np.ndarray, pb: np.ndarray, label: str | None
    ) -> tuple[float, tuple[float, float] | None]:
        samples = np.linspace(0.06, 0.94, 33)
        half = (_CHAR_WIDTH * len(label) + 0.2) / 2 if label else 0.0
        best: tuple[float, float, tuple[float, float] | None] | None = None
        for rad in self.RADS:
            curve = _bezier(pa, pb, rad, samples)
            cost = 1.5 * abs(rad)
            for key, rect in self.obstacles.items():
                if key not in (a, b):
                    cost += 10.0 * _inside(curve, rect)
            cost += 3.0 * sum(_inside(curve, r) for r in self.labels)
            if label is None:
                if best is None or cost < best[0]:
                    best = (cost, rad, None)
                continue
            for t in self.LABEL_T:
                x, y = _bezier(pa, pb, rad, np.array([t]))[0]
                rect = (x - half, y - _LABEL_HEIGHT / 2, x + half, y + _LABEL_HEIGHT / 2)
                extra = 1.0 * abs(t - 0.5)
                extra += 20.0 * sum(_overlap(rect, r) for r in self.obstacles.values())
                extra += 20.0 * sum(_overlap(rect, r) for r in self.labels)
                extra += 2.0 * sum(_inside(c, rect) for c in self.curves)
                if best is None or cost + extra < best[0]:
                    best = (cost + extra, rad, (float(x), float(y)))
        assert best is not None
        _, rad, where = best
        self.curves.append(_bezier(pa, pb, rad, samples))
        if where is not None and label:
            x, y = where
            self.labels.append((x - half, y - _LABEL_HEIGHT / 2, x + half, y + _LABEL_HEIGHT / 2))
        return rad, where


def plot_cell(
    architecture: Mapping[str, Any],
    cell: str,
    path: str | os.PathLike,
    readout: str | None = None,
) -> Path:
    """A DARTS-style diagram of the derived ``cell`` (``normal``, ``reduce`` or ``seq``).

    Inputs c_{k-2} and c_{k-1} (the two previous cells' outputs) on the left, the
    intermediate nodes 0, 1, ... in order, each receiving its two chosen edges labelled
    with the op, and the output c_{k} on the right, the concatenation of all intermediate
    nodes (dashed grey arrows). ``architecture`` is the ``architecture.json`` document or
    its ``architecture`` field. ``readout``: the cell's output feeds the readout of that
    name (drawn after c_{k}). An absent cell raises :class:`ArchitectureError`.
    """
    edges = cell_edges(architecture, cell)
    nodes = sorted({node for _, node, _ in edges})
    first = min(nodes)  # index of intermediate node 0 (2 with two predecessors)
    step = 2.5
    # Inputs on the left, intermediate nodes on a zig-zag, output on the right.
    pos: dict[Any, np.ndarray] = {0: np.array([0.0, -1.5]), 1: np.array([0.0, 1.5])}
    for j, node in enumerate(nodes):
        pos[node] = np.array([step * (j + 1), 0.9 if j % 2 == 0 else -0.9])
    out_key = "out"
    pos[out_key] = np.array([step * (len(nodes) + 1) + 0.5, 0.0])
    margin = 0.1
    obstacles: dict[Any, tuple[float, float, float, float]] = {}
    for key, (x, y) in pos.items():
        hw, hh = (
            (_NODE_RADIUS, _NODE_RADIUS)
            if key in nodes
            else (_BOX_SIZE[0] / 2 + 0.1, _BOX_SIZE[1] / 2 + 0.06)
        )
        obstacles[key] = (x - hw - margin, y - hh - margin, x + hw + margin, y + hh + margin)

    router = _CellRouter(obstacles)
    # Short edges first: they get the straight lines, long ones bend around them.
    ordered = sorted(
        edges,
        key=lambda e: (abs(nodes.index(e[1]) - (nodes.index(e[0]) if e[0] in nodes else -1)), e[1]),
    )
    routes = [(e, *router.route(e[0], e[1], pos[e[0]], pos[e[1]], e[2])) for e in ordered]
    concat = [
        (node, router.route(node, out_key, pos[node], pos[out_key], None)[0]) for node in nodes
    ]

    points = [
        *router.curves,
        np.array([[r[0], r[1]] for r in obstacles.values()]),
        np.array([[r[2], r[3]] for r in obstacles.values()]),
    ]
    points += [np.array([[r[0], r[1]], [r[2], r[3]]]) for r in router.labels]
    every = np.concatenate(points)
    (x_min, y_min), (x_max, y_max) = every.min(axis=0) - 0.25, every.max(axis=0) + 0.25
    width, height = (x_max - x_min) * _INCH_PER_UNIT, (y_max - y_min) * _INCH_PER_UNIT
    title_space = 0.45  # inches above the drawing
    fig = Figure(figsize=(width, height + title_space))
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + title_space)))
    ax.set_axis_off()
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_aspect("equal")
    colours = _op_colours(sorted({op for _, _, op in edges}))

    # Node shapes first: arrows are clipped at their borders (patchA / patchB).
    shapes: dict[Any, Any] = {}
    for key, text, face in (
        (0, "$c_{k-2}$", "#cfe3f7"),
        (1, "$c_{k-1}$", "#cfe3f7"),
        (out_key, "$c_{k}$", "#d5ecd0"),
    ):
        x, y = pos[key]
        w, h = _BOX_SIZE
        shapes[key] = ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.06", fc=face, ec="0.2", zorder=2
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=11, zorder=4)
    ax.text(
        *(pos[out_key] + [0, -_BOX_SIZE[1] / 2 - 0.2]),
        "concat",
        ha="center",
        va="top",
        fontsize=8,
        color="0.35",
    )
    for node in nodes:
        x, y = pos[node]
        shapes[node] = ax.add_patch(Circle((x, y), _NODE_RADIUS, fc="#fde9b6", ec="0.2", zorder=2))
        ax.text(x, y, str(node - first), ha="center", va="center", fontsize=11, zorder=4)

    for (source, node, op), rad, where in routes:
        ax.add_patch(
            FancyArrowPatch(
                tuple(pos[source]),
                tuple(pos[node]),
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=14,
                linewidth=1.8,
                color=colours[op],
                patchA=shapes[source],
                patchB=shapes[node],
                zorder=1,
            )
        )
        if where is not None:
            ax.text(
                *where,
                op,
                ha="center",
                va="center",
                fontsize=_LABEL_FONT,
                zorder=3,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=colours[op], lw=0.9),
            )
    for node, rad in concat:
        ax.add_patch(
            FancyArrowPatch(
                tuple(pos[node]),
                tuple(pos[out_key]),
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=10,
                linewidth=0.9,
                color="0.55",
                linestyle=(0, (3, 2)),
                patchA=shapes[node],
                patchB=shapes[out_key],
                zorder=0,
            )
        )
    if readout is not None:
        ax.text(
            *(pos[out_key] + [0, _BOX_SIZE[1] / 2 + 0.2]),
            f"→ readout: {readout}",
            ha="center",
            va="bottom",
            fontsize=8,
            color="#2b6a2b",
        )
    ax.set_title(f"{cell} cell", fontsize=12)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- study
def plot_accuracy_scatter(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike
) -> Path | None:
    """Mean UA against its standard deviation over folds, one labelled point per group.

    ``rows`` are summary rows (:func:`emodarts_nni.reporting.runs.summarise`): ``strategy``,
    ``scope``, ``ua_mean``, ``ua_std`` (fractions), optional ``corpus`` (one marker colour
    per corpus) and ``n``. Up and to the left is better: accurate and stable across folds.
    A group of one run has no spread and is drawn hollow at std 0. ``None`` without rows.
    """
    points = [r for r in rows if number(r.get("ua_mean")) is not None]
    if not points:
        return None
    corpora = sorted({str(r.get("corpus") or "") for r in points})
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    labels: list[tuple[float, float, str]] = []
    for ci, corpus in enumerate(corpora):
        colour = palette[ci % len(palette)]
        mine = [r for r in points if str(r.get("corpus") or "") == corpus]
        for r in mine:
            std = number(r.get("ua_std"))
            x, y = 100 * (std if std is not None else 0.0), 100 * float(r["ua_mean"])
            ax.scatter(
                [x],
                [y],
                s=60,
                zorder=3,
                edgecolors=[colour],
                facecolors=[colour] if std is not None else ["none"],
                linewidths=1.6,
            )
            label = f"{r.get('strategy')} / {r.get('scope')}"
            if r.get("n") is not None:
                label += f" (n={r['n']})"
            labels.append((x, y, label))
        ax.scatter([], [], color=colour, label=corpus or "(corpus unknown)")
    ax.set_xlabel("UA std over folds (%)")
    ax.set_ylabel("mean UA (%)")
    ax.set_title("Accuracy and its spread per strategy / scope")
    ax.grid(alpha=0.3)
    ax.margins(x=0.25, y=0.15)
    right = max(ax.get_xlim()[1], 1.0)  # one fold (no spread) still gets a readable axis
    ax.set_xlim(-0.05 * right, right)  # std ≥ 0: no empty negative axis
    if len(corpora) > 1 or corpora != [""]:
        ax.legend(fontsize=8, title="corpus", title_fontsize=8)
    annotate_points(ax, labels)
    return save_figure(fig, path)


def plot_training_curves(
    history_rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    best_epoch: int | None = None,
) -> Path | None:
    """Training loss and validation UA per epoch, one line per stage (search, retrain).

    Multi-trial histories (stage ``trial``) restart their epochs for every trial; each
    trial is drawn as a thin line of its own. ``best_epoch`` (the retrain epoch whose
    weights were kept) is marked by a dotted line. ``None`` when no row has a loss or a UA.
    """
    stages: dict[str, list[Mapping[str, Any]]] = {}
    for row in history_rows:
        if number(row.get("train_loss")) is None and number(row.get("val_ua")) is None:
            continue
        stages.setdefault(str(row.get("stage") or "train"), []).append(row)
    if not stages:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    loss_ax, ua_ax = fig.subplots(1, 2)
    colours = {"search": "tab:blue", "retrain": "tab:orange", "trial": "tab:green"}
    for i, (stage, rows) in enumerate(stages.items()):
        colour = colours.get(stage, f"C{i + 3}")
        for s, segment in enumerate(_segments(rows)):
            x = [number(r.get("epoch")) for r in segment]
            x = [float(e) if e is not None else float(j) for j, e in enumerate(x)]
            style = dict(
                color=colour,
                linewidth=1.0 if stage == "trial" else 1.8,
                alpha=0.5 if stage == "trial" else 1.0,
                label=stage if s == 0 else None,
            )
            for ax, key in ((loss_ax, "train_loss"), (ua_ax, "val_ua")):
                y = [number(r.get(key)) for r in segment]
                if any(v is not None for v in y):
                    scale = 100.0 if key == "val_ua" else 1.0
                    ax.plot(
                        x,
                        [scale * v if v is not None else float("nan") for v in y],
                        marker="o" if len(x) < 3 else None,
                        **style,
                    )
    loss_ax.set_title("training loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy")
    ua_ax.set_title("validation UA")
    ua_ax.set_xlabel("epoch")
    ua_ax.set_ylabel("UA (%)")
    if best_epoch is not None and "retrain" in stages:
        ua_ax.axvline(best_epoch, color=colours["retrain"], linestyle=":", linewidth=1.2,
                      label=f"best retrain epoch ({best_epoch})")  # fmt: skip
    for ax in (loss_ax, ua_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save_figure(fig, path)


def _segments(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Split rows wherever the epoch does not increase (a new trial or a restart)."""
    segments: list[list[Mapping[str, Any]]] = []
    last: float | None = None
    for row in rows:
        epoch = number(row.get("epoch"))
        if not segments or (epoch is not None and last is not None and epoch <= last):
            segments.append([])
        segments[-1].append(row)
        last = epoch
    return segments
