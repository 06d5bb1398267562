"""Second-order DARTS (``darts-2nd``) and β-DARTS (``beta-darts``).

The unrolled α gradient is checked against autograd's exact one: differentiate
L_val(w - ξ(∇w L_train(w, α) + ...), α) with respect to α through the virtual step
(``create_graph=True``). The check is tight enough that pt.darts' Hessian scaling
(``(p - n) / 2. * eps``) fails it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import toyspace
from conftest import SMALL_SPACE
from test_pipeline import cache, tiny_config  # noqa: F401 (cache is a fixture)
from torch import nn
from torch.func import functional_call

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import ConfigError
from emodarts_nni.space.architecture import load_architecture
from emodarts_nni.strategy.darts.beta import (
    BETA_DECAY_WEIGHT,
    BetaDARTS,
    BetaDartsModule,
    beta_decay_loss,
    beta_decay_weight,
)
from emodarts_nni.strategy.darts.second_order import (
    SecondOrderDARTS,
    SecondOrderDartsModule,
    darts_2nd_step,
    unrolled_arch_gradient,
)
from emodarts_nni.strategy.registry import make_strategy

#: Finite differences in float64 at radius 0.01. Measured here: 3.3e-5 (Hessian-vector product)
#: and 6.9e-6 (dα); first order alone and pt.darts' scaling are both off by 0.21.
RTOL = 1e-4


class MixedMLP(nn.Module):
    """Two mixed edges: 4 → 6 over three ops, 6 → 3 over two ops (α differentiable)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha_1 = nn.Parameter(0.5 * torch.randn(3))
        self.alpha_2 = nn.Parameter(0.5 * torch.randn(2))
        self.edge_1 = nn.ModuleList([nn.Linear(4, 6) for _ in range(3)])
        self.edge_2 = nn.ModuleList([nn.Linear(6, 3) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w1, w2 = torch.softmax(self.alpha_1, 0), torch.softmax(self.alpha_2, 0)
        a, b, c = self.edge_1
        h = w1[0] * torch.tanh(a(x)) + w1[1] * torch.sigmoid(b(x)) + w1[2] * c(x)
        d, e = self.edge_2
        return w2[0] * torch.tanh(d(h)) + w2[1] * e(h)

    def alphas(self) -> list[nn.Parameter]:
        return [self.alpha_1, self.alpha_2]

    def weights(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("alpha")]


def _batches(seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(
        (
            torch.randn(8, 4, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (8,), generator=g),
        )
        for _ in range(2)
    )


def _exact(net: MixedMLP, train, val, xi: float, momentum_term=None, weight_decay: float = 0.0):
    """Autograd's unrolled α gradient and its Hessian-vector product, no finite difference."""
    loss_fn = nn.CrossEntropyLoss()
    names = [n for n, _ in net.named_parameters() if not n.startswith("alpha")]
    w = {
        n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters() if n in names
    }
    a = {
        n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters() if n not in w
    }

    def loss(params, batch):
        return loss_fn(functional_call(net, params, (batch[0],)), batch[1])

    g = torch.autograd.grad(loss({**w, **a}, train), list(w.values()), create_graph=True)
    step = {
        n: gi + weight_decay * w[n] + (0 if momentum_term is None else momentum_term[n])
        for n, gi in zip(names, g, strict=True)
    }
    w_virtual = {n: w[n] - xi * step[n] for n in names}
    val_loss = loss({**w_virtual, **a}, val)
    total = torch.autograd.grad(val_loss, list(a.values()), retain_graph=True)
    v = [t.detach() for t in torch.autograd.grad(val_loss, list(w_virtual.values()))]
    # H·v = ∇α (∇w L_train(w, α) · v), exactly
    g2 = torch.autograd.grad(loss({**w, **a}, train), list(w.values()), create_graph=True)
    hvp = torch.autograd.grad(
        sum((gi * vi).sum() for gi, vi in zip(g2, v, strict=True)), list(a.values())
    )
    return torch.cat([t.flatten() for t in total]), torch.cat([t.flatten() for t in hvp])


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.flatten() for t in tensors])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_unrolled_gradient_matches_autograd_and_the_pt_darts_scaling_does_not() -> None:
    torch.manual_seed(0)
    net = MixedMLP().double()
    train, val = _batches()
    xi = 0.5  # large enough that the second-order term is a sizeable part of dα
    opt = torch.optim.SGD(net.weights(), lr=xi)
    result = unrolled_arch_gradient(
        net, lambda b: nn.functional.cross_entropy(net(b[0]), b[1]), train, val, net.alphas(), opt
    )
    exact_total, exact_hvp = _exact(net, train, val, xi)
    assert _rel(_flat(result.hessian_product), exact_hvp) < RTOL
    assert _rel(_flat(result.arch_gradient()), exact_total) < RTOL
    # the second-order term matters here: first order alone is far off ...
    assert _rel(_flat(result.val_grad), exact_total) > 100 * RTOL
    # ... and so is pt.darts' `(p - n) / 2. * eps` (= the right value times ε²)
    buggy = [
        g - xi * h * result.epsilon**2
        for g, h in zip(result.val_grad, result.hessian_product, strict=True)
    ]
    assert _rel(_flat(buggy), exact_total) > 100 * RTOL


def test_darts_2nd_step_unrolls_sgd_with_momentum_and_weight_decay() -> None:
    """After one real step (momentum buffers exist) the virtual step is SGD's next one,
    w' = w - ξ(μ·buf + ∇w L_train + wd·w); the step then leaves weights, buffers and the
    optimiser state as a plain weight step at the new α would."""
    torch.manual_seed(1)
    net = MixedMLP().double()
    loss_fn = nn.CrossEntropyLoss()
    xi, mu, wd = 0.3, 0.9, 3e-3
    w_opt = torch.optim.SGD(net.weights(), lr=xi, momentum=mu, weight_decay=wd)
    a_opt = torch.optim.SGD(net.alphas(), lr=1.0)  # α_new = α - dα
    train, val = _batches(1)
    darts_2nd_step(net, loss_fn, val, train, a_opt, w_opt, grad_clip=None)  # fills the buffers

    train, val = _batches(2)
    buffers = {
        n: mu * w_opt.state[p]["momentum_buffer"]
        for n, p in net.named_parameters()
        if not n.startswith("alpha")
    }
    exact_total, _ = _exact(net, train, val, xi, momentum_term=buffers, weight_decay=wd)
    alpha_before = _flat(net.alphas()).detach().clone()
    reference = copy.deepcopy(net)
    reference_opt = torch.optim.SGD(reference.weights(), lr=xi, momentum=mu, weight_decay=wd)
    reference_opt.load_state_dict(copy.deepcopy(w_opt.state_dict()))  # buffers not shared

    darts_2nd_step(net, loss_fn, val, train, a_opt, w_opt, grad_clip=None)

    assert _rel(alpha_before - _flat(net.alphas()).detach(), exact_total) < RTOL
    with torch.no_grad():
        for mine, theirs in zip(net.alphas(), reference.alphas(), strict=True):
            theirs.copy_(mine)
    reference_opt.zero_grad()
    loss_fn(reference(train[0]), train[1]).backward()
    reference_opt.step()
    for (name, mine), theirs in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine, theirs), name


def test_the_alpha_step_restores_weights_buffers_and_optimiser_state_exactly() -> None:
    """On NNI's DARTS supernet of the toy space (BatchNorm running statistics included)."""
    torch.manual_seed(0)
    net = SecondOrderDARTS().mutate_model(toyspace.ToySpace())
    alphas = [p for n, p in net.named_parameters() if "_arch_alpha" in n]
    weights = [p for n, p in net.named_parameters() if "_arch_alpha" not in n]
    w_opt = torch.optim.SGD(weights, lr=0.1, momentum=0.9, weight_decay=3e-4)
    data = toyspace.RandomImages(16, seed=0)
    train, val = (data.images[:8], data.labels[:8]), (data.images[8:], data.labels[8:])
    loss_fn = nn.CrossEntropyLoss()
    w_opt.zero_grad()
    loss_fn(net(train[0]), train[1]).backward()
    w_opt.step()
    for p in net.parameters():
        p.grad = None
    state = {k: v.clone() for k, v in net.state_dict().items()}
    opt_state = copy.deepcopy(w_opt.state_dict())

    result = unrolled_arch_gradient(
        net, lambda b: loss_fn(net(b[0]), b[1]), train, val, alphas, w_opt
    )

    assert result.epsilon > 0 and all(torch.isfinite(g).all() for g in result.arch_gradient())
    assert any(g.abs().sum() > 0 for g in result.hessian_product)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key  # weights and BatchNorm buffers
    assert all(p.grad is None for p in net.parameters())
    after = w_opt.state_dict()["state"]
    for index, entry in opt_state["state"].items():
        assert torch.equal(after[index]["momentum_buffer"], entry["momentum_buffer"])
    assert all(p.requires_grad for p in net.parameters())


# ----------------------------------------------------------------------------- β-decay


def test_beta_decay_loss_is_the_mean_logsumexp_and_its_gradient_is_softmax_over_edges() -> None:
    uniform = torch.zeros(5, requires_grad=True)
    peaked = torch.tensor([4.0, 0.0, -1.0], requires_grad=True)
    loss = beta_decay_loss([uniform, peaked])
    expected = (torch.log(torch.tensor(5.0)) + torch.log(torch.exp(peaked.detach()).sum())) / 2
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()
    torch.testing.assert_close(uniform.grad, torch.full((5,), 0.2) / 2)
    torch.testing.assert_close(peaked.grad, torch.softmax(peaked.detach(), 0) / 2)
    # gradient descent on it shrinks the largest α most: the β-decay
    assert int(peaked.grad.argmax()) == int(peaked.detach().argmax())
    with pytest.raises(ValueError, match="at least one"):
        beta_decay_loss([])


def test_beta_decay_weight_grows_linearly_to_the_papers_fifty() -> None:
    assert BETA_DECAY_WEIGHT == 50.0
    assert [beta_decay_weight(50.0, e, 100) for e in (0, 50, 99)] == [0.0, 25.0, 49.5]
    assert beta_decay_weight(50.0, 3, 6) == 25.0
    assert beta_decay_weight(50.0, 7, -1) == 50.0  # Lightning's "no epoch limit"


def test_strategies_build_their_modules_and_refuse_bad_parameters() -> None:
    from emodarts_nni.training.module import SerModule

    assert isinstance(make_strategy("darts-2nd"), SecondOrderDARTS)
    module = make_strategy("darts-2nd", epsilon_scale=0.02).configure_oneshot_module(SerModule())
    assert isinstance(module, SecondOrderDartsModule) and module.epsilon_scale == 0.02
    module = make_strategy("beta-darts", beta_decay_weight=10).configure_oneshot_module(SerModule())
    assert isinstance(module, BetaDartsModule) and module.beta_decay_max == 10.0
    assert isinstance(make_strategy("beta-darts"), BetaDARTS)
    with pytest.raises(ConfigError, match="epsilon_scale must be a positive number"):
        make_strategy("darts-2nd", epsilon_scale=0)
    with pytest.raises(ConfigError, match="beta_decay_weight must be a number >= 0"):
        make_strategy("beta-darts", beta_decay_weight=-1.0)
    with pytest.raises(ConfigError, match="'darts-2nd' has no parameter 'penalty'"):
        make_strategy("darts-2nd", penalty={"profiler": None})


# ---------------------------------------------------------------- the real pipeline path


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["darts-2nd", "beta-darts"])
def test_strategy_searches_one_epoch_and_exports_a_loadable_architecture(
    name: str,
    tmp_path: Path,
    cache: Path,  # noqa: F811 (the fixture imported above)
) -> None:
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "run"
    argv = ["search", str(config), "--strategy", name, "--no-webui", "--out", str(out)]
    assert main(argv) == 0
    document = json.loads((out / "architecture.json").read_text())
    assert document["provenance"]["strategy"] == name
    model = load_architecture(out / "architecture.json")
    x = torch.zeros(2, SMALL_SPACE["n_mfcc"], SMALL_SPACE["frames"])
    assert model(x).shape == (2, document["space"]["n_classes"])
    history = (out / "history.csv").read_text()
    assert "alpha/normal/2_0/" in history
    if name == "beta-darts":
        assert "beta_decay_weight" in history.splitlines()[0]
