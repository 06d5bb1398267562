"""Draw ``docs/img/concepts-space.png``: the joint emoDARTS space, from the real space.

Builds :func:`emodarts_nni.build_space` at the paper's sizes, runs one utterance through
it to record every component's output shape, reads the NNI choice labels of each cell
from ``space.simplify()``, and draws the pipeline (left) beside one cell with its
``LayerChoice`` / ``InputChoice`` labels (right). Rerun after changing the space::

    python docs/img/concepts_figure.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

import emodarts_nni  # noqa: E402
from emodarts_nni.reporting.plots import save_figure  # noqa: E402

OUT = Path(__file__).with_name("concepts-space.png")
CNN_COLOUR, SEQ_COLOUR, FIXED_COLOUR = "#cfe2f3", "#d9ead3", "#eeeeee"


def _shape(output: Any) -> tuple[int, ...]:
    """The shape a component hands on (a cell returns ``[previous, this]``: take ``this``)."""
    tensor = output[-1] if isinstance(output, (list, tuple)) else output
    return tuple(tensor.shape[1:])


def trace_space() -> tuple[list[tuple[str, str, tuple[int, ...], str]], dict[str, Any]]:
    """Components ``(title, detail, output shape, colour)`` and the space's choices."""
    torch.manual_seed(0)
    space = emodarts_nni.build_space("emodarts")
    space.eval()
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            shapes[name] = _shape(output)

        return hook

    space.stem.register_forward_hook(record("stem"))
    for index, cell in enumerate(space.cnn_cells):
        cell.register_forward_hook(record(f"cnn{index}"))
    space.bridge.register_forward_hook(record("bridge"))
    for index, cell in enumerate(space.seq_cells):
        cell.register_forward_hook(record(f"seq{index}"))
    space.classifier.register_forward_hook(record("classifier"))
    with torch.no_grad():
        space(torch.randn(1, space.n_mfcc, space.frames))

    rows = [("MFCC input", "n_mfcc × frames", (1, space.n_mfcc, space.frames), FIXED_COLOUR)]
    rows.append(("stem", "3×3 conv + BN", shapes["stem"], FIXED_COLOUR))
    for index, cell in enumerate(space.cnn_cells):
        rows.append(
            (
                f"CNN cell {index}",
                f'NNI Cell, label "{cell.label}"',
                shapes[f"cnn{index}"],
                CNN_COLOUR,
            )
        )
    rows.append(
        ("bridge", "mean over frequency, Linear + LayerNorm", shapes["bridge"], FIXED_COLOUR)
    )
    for index, cell in enumerate(space.seq_cells):
        rows.append(
            (
                f"SeqNN cell {index}",
                f'NNI Cell, label "{cell.label}"',
                shapes[f"seq{index}"],
                SEQ_COLOUR,
            )
        )
    rows.append(("head", "mean over time, dropout, Linear", shapes["classifier"], FIXED_COLOUR))
    return rows, space.simplify()


def _box(
    ax: Any, x: float, y: float, w: float, h: float, colour: str, text: str, **kw: Any
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour, ec="#555555"
        )
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", **kw)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], **kw: Any) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#444444", **kw)
    )


def draw(rows: list[tuple[str, str, tuple[int, ...], str]], choices: dict[str, Any]) -> Path:
    """Draw the figure and write it to :data:`OUT`."""
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, 8.2), gridspec_kw={"width_ratios": [1, 1.15]}
    )
    for ax in (left, right):
        ax.set_axis_off()

    # Left: the pipeline, top to bottom.
    n = len(rows)
    left.set_xlim(0, 10)
    left.set_ylim(-0.5, n * 1.2)
    for i, (title, detail, shape, colour) in enumerate(rows):
        y = (n - 1 - i) * 1.2
        _box(left, 0.6, y, 6.0, 0.8, colour, f"{title}\n{detail}", fontsize=9.5)
        left.text(6.9, y + 0.4, "(" + " × ".join(map(str, shape)) + ")", va="center", fontsize=9)
        if i:
            _arrow(left, (3.6, y + 1.2), (3.6, y + 0.8))
    left.set_title("The joint space at the paper's sizes (output shape per utterance)", fontsize=11)

    # Right: one cell and its NNI choice labels.
    right.set_xlim(0, 10)
    right.set_ylim(0, 8.8)
    nodes = {0: (1.2, 7.6), 1: (1.2, 3.2), 2: (4.6, 7.6), 3: (4.6, 3.2)}
    names = {0: "node 0\n$c_{k-2}$", 1: "node 1\n$c_{k-1}$", 2: "node 2", 3: "node 3"}
    for node, (x, y) in nodes.items():
        _box(
            right,
            x - 0.8,
            y - 0.5,
            1.6,
            1.0,
            "#fff2cc" if node > 1 else FIXED_COLOUR,
            names[node],
            fontsize=9,
        )
    _box(right, 7.6, 4.9, 1.8, 1.0, FIXED_COLOUR, "output $c_k$\nconcat 2, 3", fontsize=9)
    for node in (2, 3):
        _arrow(right, (nodes[node][0] + 0.8, nodes[node][1]), (7.6, 5.4), linestyle="--")

    def edge(src: int, dst: int, k: int) -> None:
        (x0, y0), (x1, y1) = nodes[src], nodes[dst]
        if x0 == x1:  # node above node: straight down, label beside
            start, end = (x0, y0 - 0.5), (x1, y1 + 0.5)
            label_at, align = (x0 + 0.15, (y0 + y1) / 2), "left"
        else:
            start, end = (x0 + 0.8, y0), (x1 - 0.8, y1 + (0.25 if k == 0 else -0.25))
            label_at, align = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), "center"
        _arrow(right, start, end)
        right.text(
            *label_at,
            f"op_{dst}_{k}\ninput_{dst}_{k}={src}",
            ha=align,
            va="center",
            fontsize=7.5,
            bbox={"fc": "white", "ec": "none", "alpha": 0.85},
        )

    edge(0, 2, 0)
    edge(1, 2, 1)
    edge(1, 3, 0)
    edge(2, 3, 1)
    n_ops = {kind: len(choices[f"{kind}/op_2_0"].values) for kind in ("normal", "seq")}
    text = (
        "Each intermediate node i sums 2 inputs; input k of node i is one\n"
        "LayerChoice and one InputChoice, labelled by the cell:\n\n"
        "  <cell>/op_i_k      which operation   (LayerChoice)\n"
        "  <cell>/input_i_k   which earlier node (InputChoice, 1 of i)\n\n"
        f'  "normal"/"reduce": {n_ops["normal"]} CNN ops of the scope ("none" excluded)\n'
        f'  "seq":             {n_ops["seq"]} SeqNN ops of the scope\n\n'
        "Every cell with the same label shares one set of choices:\n"
        f"this space has {len(choices)} choices in all, e.g.\n"
        + "\n".join(
            f"  {label}: {len(choice.values)} values" for label, choice in list(choices.items())[:1]
        )
        + "\n  normal/input_3_0: one of nodes 0, 1, 2"
    )
    right.text(0.2, 1.9, text, va="top", fontsize=9, family="monospace")
    right.set_title(
        "One cell (2 intermediate nodes drawn; the paper's CNN cells have 4)", fontsize=11
    )
    fig.tight_layout()
    path = save_figure(fig, OUT)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw(*trace_space()))
