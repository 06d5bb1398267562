"""darts-2nd with dropout: both finite-difference sides draw the same masks.

The Hessian-vector product of second-order DARTS is a difference of two training losses
divided by 2ε; with dropout each pass used to draw its own masks and the term was mostly
their difference (docs/strategies.md#darts-2nd). Now both sides replay the masks of the
training pass at w (common random numbers), so with dropout the unrolled gradient is the
exact gradient of one fixed-mask objective, and its Hessian term has the dropout-free size.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from test_variants_order import RTOL, MixedMLP, _batches, _flat, _rel
from torch import nn
from torch.func import functional_call

from emodarts_nni.strategy.darts.second_order import unrolled_arch_gradient

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "second_order_noise.py"
DROPOUT = 0.3  # the space's default (space/args.py)


def _benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("second_order_noise", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DropoutMixedMLP(MixedMLP):
    """:class:`MixedMLP` with dropout on the input and on the hidden mixed edge's output."""

    def __init__(self, p: float = DROPOUT) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        w1, w2 = torch.softmax(self.alpha_1, 0), torch.softmax(self.alpha_2, 0)
        a, b, c = self.edge_1
        h = self.dropout(w1[0] * torch.tanh(a(x)) + w1[1] * torch.sigmoid(b(x)) + w1[2] * c(x))
        d, e = self.edge_2
        return w2[0] * torch.tanh(d(h)) + w2[1] * e(h)


def _recorded(
    loss: Callable[[Any], torch.Tensor],
) -> tuple[Callable[[Any], torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """``loss``, and the generator state before and after each of its calls."""
    before: list[torch.Tensor] = []
    after: list[torch.Tensor] = []

    def wrapped(batch: Any) -> torch.Tensor:
        before.append(torch.get_rng_state())
        value = loss(batch)
        after.append(torch.get_rng_state())
        return value

    return wrapped, before, after


def _exact_with_masks(
    net: nn.Module, train, val, xi: float, train_rng: torch.Tensor, val_rng: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Autograd's unrolled dα and ∇²α,w L_train · v with fixed masks: every training pass
    draws from ``train_rng``, the validation pass from ``val_rng`` (no finite difference)."""
    w = {
        n: p.detach().clone().requires_grad_(True)
        for n, p in net.named_parameters()
        if not n.startswith("alpha")
    }
    a = {
        n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters() if n not in w
    }

    def loss(params, batch, rng):
        torch.set_rng_state(rng)
        return nn.functional.cross_entropy(functional_call(net, params, (batch[0],)), batch[1])

    g = torch.autograd.grad(loss({**w, **a}, train, train_rng), list(w.values()), create_graph=True)
    w_virtual = {n: w[n] - xi * gi for n, gi in zip(w, g, strict=True)}
    val_loss = loss({**w_virtual, **a}, val, val_rng)
    total = torch.autograd.grad(val_loss, list(a.values()), retain_graph=True)
    v = [t.detach() for t in torch.autograd.grad(val_loss, list(w_virtual.values()))]
    g2 = torch.autograd.grad(
        loss({**w, **a}, train, train_rng), list(w.values()), create_graph=True
    )
    hvp = torch.autograd.grad(
        sum((gi * vi).sum() for gi, vi in zip(g2, v, strict=True)), list(a.values())
    )
    return _flat(total), _flat(hvp)


def test_both_sides_replay_the_training_pass_masks_and_the_generator_moves_on() -> None:
    torch.manual_seed(0)
    net = DropoutMixedMLP().double()
    train, val = _batches()
    loss, before, after = _recorded(lambda b: nn.functional.cross_entropy(net(b[0]), b[1]))

    unrolled_arch_gradient(
        net, loss, train, val, net.alphas(), torch.optim.SGD(net.weights(), lr=0.1)
    )

    assert len(before) == 4  # train at w, validation at w', train at w + εv and at w - εv
    assert not torch.equal(before[1], before[0])  # validation draws its own masks ...
    assert torch.equal(before[2], before[0]) and torch.equal(
        before[3], before[0]
    )  # ... sides don't
    # the generator stands where the two real passes left it: the next batch's masks are new
    assert torch.equal(torch.get_rng_state(), after[1])
    assert not torch.cuda.is_initialized()  # on a CPU run only the CPU generator is touched


def test_with_dropout_the_unrolled_gradient_is_autograds_under_the_same_masks() -> None:
    """Fixed masks make the training loss a deterministic function of (w, α): the central
    difference converges to its exact Hessian-vector product (float64, ε = 0.01/‖v‖), and dα
    to the exact gradient of the unrolled objective with those masks."""
    torch.manual_seed(0)
    net = DropoutMixedMLP().double()
    train, val = _batches()
    xi = 0.5  # the second-order term is a sizeable part of dα
    loss, before, _ = _recorded(lambda b: nn.functional.cross_entropy(net(b[0]), b[1]))

    result = unrolled_arch_gradient(
        net, loss, train, val, net.alphas(), torch.optim.SGD(net.weights(), lr=xi)
    )

    exact_total, exact_hvp = _exact_with_masks(net, train, val, xi, before[0], before[1])
    # measured over seeds 0-2: 1.5e-5 to 3.9e-5 (Hessian-vector product), 2e-6 to 4e-6 (dα)
    assert _rel(_flat(result.hessian_product), exact_hvp) < RTOL
    assert _rel(_flat(result.arch_gradient()), exact_total) < RTOL
    # the sides drawing their own masks (the code before): the "product" is mask noise,
    # 50 to 160 times the true one's norm (seeds 0-2), and dα is further off than first order
    torch.manual_seed(0)
    net = DropoutMixedMLP().double()
    noisy = unrolled_arch_gradient(
        net,
        _benchmark().independent_masks(lambda b: nn.functional.cross_entropy(net(b[0]), b[1])),
        train,
        val,
        net.alphas(),
        torch.optim.SGD(net.weights(), lr=xi),
    )
    assert _rel(_flat(noisy.hessian_product), exact_hvp) > 10
    assert _rel(_flat(noisy.arch_gradient()), exact_total) > _rel(
        _flat(result.val_grad), exact_total
    )


def test_the_hessian_terms_spread_over_seeds_is_the_dropout_free_one_not_mask_noise() -> None:
    """‖ξ·H·v‖ over 10 seeds (network, batches, masks) at ξ = 0.025, with the benchmark
    that produced the figure in docs/strategies.md."""
    bench = _benchmark()

    def terms(p: float, common: bool) -> list[float]:
        return [bench.measure(seed, p, common)[0] for seed in range(10)]

    dropout_free = terms(0.0, True)
    assert terms(0.0, False) == dropout_free  # nothing random to share: no change at p = 0
    common, independent = terms(DROPOUT, True), terms(DROPOUT, False)
    scale = statistics.mean(dropout_free)
    # measured: p = 0 1.5e-4 ± 1.0e-4; common 1.6e-4 ± 0.9e-4; independent 7.8e-3 ± 2.2e-3
    # with common masks: the dropout-free size and spread ...
    assert 0.5 * scale < statistics.mean(common) < 2 * scale
    assert statistics.stdev(common) < 2 * statistics.stdev(dropout_free)
    # ... with independent masks (before): an order of magnitude more, in size and spread
    assert statistics.mean(independent) > 10 * scale
    assert statistics.stdev(independent) > 5 * statistics.stdev(dropout_free)
