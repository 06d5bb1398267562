"""How much of darts-2nd's Hessian term is dropout noise: before and after common random numbers.

Second-order DARTS subtracts ∇α L_train at w + εv and at w - εv and divides by 2ε
(:func:`emodarts_nni.strategy.darts.second_order.unrolled_arch_gradient`). If the two passes
draw different dropout masks, the difference is mostly the masks' difference. This script
measures the term ξ·H·v that dα gets from the finite difference, on a small mixed MLP, at
dropout p = 0 and p = 0.3 (the space's default), with

* ``independent`` masks — the two sides draw in sequence from the generator (the code
  before the fix; emulated by putting the generator, before the second side, where the
  first side left it), and
* ``common`` masks — what :func:`unrolled_arch_gradient` does now.

Each seed draws its own network, batches and masks; the table gives mean ± std over seeds of
‖ξ·H·v‖, of ‖∇α L_val(w', α)‖, and of their ratio. At p = 0 the two rows must agree
exactly (no randomness to share). float32, as the search runs.

    .venv/bin/python benchmarks/second_order_noise.py             # 20 seeds, a few seconds
    .venv/bin/python benchmarks/second_order_noise.py --seeds 100
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from emodarts_nni.strategy.darts.second_order import unrolled_arch_gradient

#: ξ: the weight learning rate of the virtual step (the search's SGD learning rate).
XI = 0.025
FEATURES, HIDDEN, CLASSES, BATCH = 16, 32, 4, 32


class MixedMLP(nn.Module):
    """Two mixed edges (16 → 32 over three ops, 32 → 4 over two), dropout between them."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.alpha_1 = nn.Parameter(0.5 * torch.randn(3))
        self.alpha_2 = nn.Parameter(0.5 * torch.randn(2))
        self.edge_1 = nn.ModuleList([nn.Linear(FEATURES, HIDDEN) for _ in range(3)])
        self.edge_2 = nn.ModuleList([nn.Linear(HIDDEN, CLASSES) for _ in range(2)])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w1, w2 = torch.softmax(self.alpha_1, 0), torch.softmax(self.alpha_2, 0)
        a, b, c = self.edge_1
        h = w1[0] * torch.tanh(a(x)) + w1[1] * torch.sigmoid(b(x)) + w1[2] * c(x)
        h = self.dropout(h)
        d, e = self.edge_2
        return w2[0] * torch.tanh(d(h)) + w2[1] * e(h)

    def alphas(self) -> list[nn.Parameter]:
        """The architecture parameters."""
        return [self.alpha_1, self.alpha_2]

    def weights(self) -> list[nn.Parameter]:
        """The network weights."""
        return [p for n, p in self.named_parameters() if not n.startswith("alpha")]


def independent_masks(loss: Callable[[Any], torch.Tensor]) -> Callable[[Any], torch.Tensor]:
    """``loss`` with the finite-difference sides drawing as they did before common random
    numbers: each from where the previous pass left the generator.

    :func:`unrolled_arch_gradient` calls the loss four times: train at w, validation at w',
    train at w + εv, train at w - εv; it now puts the generator back before the last two.
    The wrapper moves it on again: the third call starts where the second ended, the fourth
    where the third ended, so each side draws new masks (the old code's draws exactly).
    """
    after: list[torch.Tensor] = []

    def wrapped(batch: Any) -> torch.Tensor:
        if len(after) >= 2:
            torch.set_rng_state(after[-1])
        value = loss(batch)
        after.append(torch.get_rng_state())
        return value

    return wrapped


def measure(seed: int, dropout: float, common: bool) -> tuple[float, float]:
    """‖ξ·H·v‖ and ‖∇α L_val(w', α)‖ of one step on a fresh network, batches and masks."""
    torch.manual_seed(seed)
    net = MixedMLP(dropout)
    train, val = (
        (torch.randn(BATCH, FEATURES), torch.randint(0, CLASSES, (BATCH,))) for _ in range(2)
    )
    optimizer = torch.optim.SGD(net.weights(), lr=XI, momentum=0.9, weight_decay=3e-4)

    def loss(batch: Any) -> torch.Tensor:
        return nn.functional.cross_entropy(net(batch[0]), batch[1])

    result = unrolled_arch_gradient(
        net, loss if common else independent_masks(loss), train, val, net.alphas(), optimizer
    )
    term = torch.cat([XI * h.flatten() for h in result.hessian_product]).norm()
    val_grad = torch.cat([g.flatten() for g in result.val_grad]).norm()
    return float(term), float(val_grad)


def table(seeds: int) -> list[dict[str, Any]]:
    """One row per (dropout, masks): the seed statistics of the Hessian term."""
    rows = []
    for dropout in (0.0, 0.3):
        for common in (False, True):
            pairs = [measure(seed, dropout, common) for seed in range(seeds)]
            terms = [t for t, _ in pairs]
            ratios = [t / g for t, g in pairs]
            rows.append(
                {
                    "dropout": dropout,
                    "masks": "common (after)" if common else "independent (before)",
                    "term_mean": statistics.mean(terms),
                    "term_std": statistics.stdev(terms),
                    "val_grad_mean": statistics.mean(g for _, g in pairs),
                    "ratio_mean": statistics.mean(ratios),
                    "ratio_std": statistics.stdev(ratios),
                }
            )
    return rows


def main() -> None:
    """Print the table (markdown) for ``--seeds`` seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"ξ = {XI}, {args.seeds} seeds, float32, batch {BATCH}, MLP {FEATURES}-{HIDDEN}-{CLASSES}"
    )
    print("| dropout | masks | ‖ξ·H·v‖ | ‖∇α L_val‖ | ‖ξ·H·v‖ / ‖∇α L_val‖ |")
    print("|---|---|---|---|---|")
    for r in table(args.seeds):
        print(
            f"| {r['dropout']} | {r['masks']} | {r['term_mean']:.2e} ± {r['term_std']:.1e} "
            f"| {r['val_grad_mean']:.3f} | {100 * r['ratio_mean']:.2f} % ± {100 * r['ratio_std']:.2f} % |"
        )


if __name__ == "__main__":
    main()
