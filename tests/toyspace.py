"""A tiny NNI model space and evaluator for testing every strategy end-to-end in seconds.

The space follows the shape of NNI's DARTS space (``nni/nas/hub/pytorch/nasnet.py``) at toy
size: a string-keyed op table of factories ``f(node_index, op_index, input_index)``, a
:class:`~nni.nas.nn.pytorch.Cell` with 2 ops per node, 2 predecessors and ``merge_op='all'``
behind a preprocessor/postprocessor pair, and one :class:`~nni.nas.nn.pytorch.LayerChoice`
(the pooling of the head). Data are tiny random images generated from a seed, so a multi-trial
payload stays a few hundred bytes (nni-notes #8).

Run as a script it is also the trial of the one-shot bridge test: it searches the space with a
one-shot strategy, reports per-epoch and final metrics through
:class:`emodarts_nni.nni_runtime.TrialReporter` and writes the exported architecture as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from emodarts_nni.nni_runtime import quiet_nni_import

with quiet_nni_import():
    import nni
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.nn.pytorch import Cell, LayerChoice, ModelSpace

NUM_CLASSES = 3
IMAGE_SIZE = 8
NUM_PREDECESSORS = 2


def _relu_conv_bn(channels: int, kernel_size: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(channels, channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(channels),
    )


#: name -> factory(channels, stride); stride 2 halves the map (inputs of a reduction cell).
OPS: dict[str, Callable[[int, int], nn.Module]] = {
    "conv_3x3": lambda channels, stride: _relu_conv_bn(channels, 3, stride),
    "conv_1x1": lambda channels, stride: _relu_conv_bn(channels, 1, stride),
    "avg_pool_3x3": lambda channels, stride: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": lambda channels, stride: (
        nn.Identity() if stride == 1 else _relu_conv_bn(channels, 1, stride)
    ),
}


class CellPreprocessor(nn.Module):
    """Align the two predecessors to ``channels`` (1x1 ReLU-Conv-BN, as in ``nasnet.py``)."""

    def __init__(self, channels_pprev: int, channels_prev: int, channels: int) -> None:
        super().__init__()
        self.pre0 = nn.Sequential(nn.ReLU(), nn.Conv2d(channels_pprev, channels, 1, bias=False))
        self.pre1 = nn.Sequential(nn.ReLU(), nn.Conv2d(channels_prev, channels, 1, bias=False))

    def forward(self, cells: list[torch.Tensor]) -> list[torch.Tensor]:
        pprev, prev = cells
        return [self.pre0(pprev), self.pre1(prev)]


class CellPostprocessor(nn.Module):
    """Return ``[prev, this]`` so that cells chain (as in ``nasnet.py``)."""

    def forward(
        self, this_cell: torch.Tensor, previous_cells: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return [previous_cells[-1], this_cell]


def _op_factory(
    node_index: int,
    op_index: int,
    input_index: int | None,
    *,
    op: str,
    channels: int,
    reduction: bool,
) -> nn.Module:
    """Cell op factory ``f(node_index, op_index, input_index)``.

    As in ``nasnet.py``, ops reading a predecessor of a reduction cell use stride 2 (and
    ``input_index`` is ``None`` while the search space is built).
    """
    stride = 2 if reduction and (input_index is None or input_index < NUM_PREDECESSORS) else 1
    return OPS[op](channels, stride)


class ToySpace(ModelSpace):
    """Stem -> one cell -> choice of pooling (``pool``) -> linear classifier.

    The cell is a reduction cell labelled ``reduce`` (the harder case: its ops depend on
    which input they read), or with ``reduction=False`` a ``normal`` cell. Choice labels:
    ``{cell}/op_{node}_{k}``, ``{cell}/input_{node}_{k}`` and ``pool``.
    """

    def __init__(
        self,
        channels: int = 4,
        num_nodes: int = 2,
        ops: Sequence[str] = tuple(OPS),
        reduction: bool = True,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        op_factories = {
            name: partial(_op_factory, op=name, channels=channels, reduction=reduction)
            for name in ops
        }
        self.cell = Cell(
            op_factories,
            num_nodes=num_nodes,
            num_ops_per_node=2,
            num_predecessors=NUM_PREDECESSORS,
            merge_op="all",
            preprocessor=CellPreprocessor(channels, channels, channels),
            postprocessor=CellPostprocessor(),
            label="reduce" if reduction else "normal",
        )
        self.pool = LayerChoice(
            {"avg": nn.AdaptiveAvgPool2d(1), "max": nn.AdaptiveMaxPool2d(1)}, label="pool"
        )
        self.classifier = nn.Linear(channels * num_nodes, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        _, out = self.cell([stem, stem])
        return self.classifier(torch.flatten(self.pool(out), 1))


@nni.trace
class RandomImages(Dataset):
    """``size`` random 1x8x8 images whose label is the quadrant of highest mean (learnable)."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(size, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        half = IMAGE_SIZE // 2
        quadrants = torch.stack(
            [
                self.images[:, 0, :half, :half].mean((1, 2)),
                self.images[:, 0, :half, half:].mean((1, 2)),
                self.images[:, 0, half:, :].mean((1, 2)),
            ],
            dim=1,
        )
        self.labels = quadrants.argmax(1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


def assert_valid_architecture(architecture: Any, reduction: bool = True) -> None:
    """``architecture`` is a plain JSON dict choosing a valid value for every choice of the space.

    It must survive a JSON round trip unchanged, use ``str`` keys (not NNI's ``str``
    subclass), and rebuild a working model: a fresh space frozen with it (nni-notes).
    """
    assert type(architecture) is dict
    assert json.loads(json.dumps(architecture)) == architecture
    assert all(type(label) is str for label in architecture)
    choices = ToySpace(reduction=reduction).simplify()
    assert set(architecture) == set(choices)
    for label, value in architecture.items():
        domain = choices[label].values
        if getattr(choices[label], "n_chosen", None) is not None:  # a cell input: [index]
            assert type(value) is list and len(value) == 1 and value[0] in domain, (label, value)
        else:
            assert type(value) is str and value in domain, (label, value)
    model = ToySpace(reduction=reduction).freeze(architecture)
    assert model(torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, NUM_CLASSES)


def make_evaluator(
    max_epochs: int = 1, callbacks: Sequence[Any] = (), train_size: int = 32, val_size: int = 16
) -> Classification:
    """A fresh CPU ``Classification`` evaluator on tiny random data (fresh trainer: nni-notes #7)."""
    return Classification(
        train_dataloaders=DataLoader(RandomImages(train_size, seed=0), batch_size=8),
        val_dataloaders=DataLoader(RandomImages(val_size, seed=1), batch_size=8),
        num_classes=NUM_CLASSES,
        learning_rate=0.01,
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )


def epoch_reporter(reporter: Any) -> Any:
    """A Lightning callback sending each training epoch's scalars through ``reporter``:
    ``default`` is ``train_acc`` (DARTS-like strategies run no validation loop); α
    probabilities (``prob/...``) are left out. The toy trial's own; the product reports
    from its run folder's history (``emodarts_nni.pipeline.run.RunContext.on_epoch``)."""
    import pytorch_lightning as pl

    class EpochReporter(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            scalars = {
                name: float(value)
                for name, value in trainer.callback_metrics.items()
                if value.numel() == 1 and not name.startswith("prob/")
            }
            if "train_acc" in scalars:
                value = scalars.pop("train_acc")
                reporter.report_intermediate(value, epoch=trainer.current_epoch, **scalars)

    return EpochReporter()


def run_oneshot_trial(strategy_name: str, epochs: int, output: Path) -> dict[str, Any]:
    """The trial of the one-shot bridge: search, report metrics to NNI, write the architecture.

    :class:`~emodarts_nni.nni_runtime.TrialReporter` is created first, before ``NasExperiment`` swaps
    NNI's trial command channel for its in-process one.
    """
    from emodarts_nni.nni_runtime import TrialReporter, run_search
    from emodarts_nni.strategy.registry import make_strategy

    reporter = TrialReporter()
    evaluator = make_evaluator(max_epochs=epochs, callbacks=[epoch_reporter(reporter)])
    architecture = run_search(
        ToySpace(), evaluator, make_strategy(strategy_name), experiment_dir=output.parent / "nas"
    )
    output.write_text(json.dumps(architecture, indent=2, sort_keys=True))
    reporter.report_final(reporter.last_value, epochs=epochs)
    return architecture


def main(argv: Sequence[str] | None = None) -> int:
    """``python toyspace.py --strategy darts --epochs 2 --output arch.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="darts")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    run_oneshot_trial(args.strategy, args.epochs, args.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
