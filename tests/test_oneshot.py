"""The frugal DARTS step on the summed cell makes exactly NNI's first-order DARTS updates."""

from __future__ import annotations

import torch
from conftest import SMALL_SPACE
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
from nni.nas.strategy import DARTS as NniDARTS

from emodarts_nni.space.model import build_space
from emodarts_nni.strategy.darts.first_order import DARTS, darts_step, frozen
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell


def _optimizers(net):
    alphas = [p for n, p in net.named_parameters() if "_arch_alpha" in n]
    weights = [p for n, p in net.named_parameters() if "_arch_alpha" not in n]
    return (
        torch.optim.Adam(alphas, 3e-2, betas=(0.5, 0.999), weight_decay=1e-3),
        torch.optim.SGD(weights, lr=0.05, momentum=0.9, weight_decay=3e-4),
    )


def _full_step(net, loss_fn, arch_batch, weight_batch, a_opt, w_opt):
    """NNI 3.0's DartsLightningModule.training_step: full backward in both phases."""
    a_opt.zero_grad()
    loss_fn(net(arch_batch[0]), arch_batch[1]).backward()
    a_opt.step()
    w_opt.zero_grad()
    loss_fn(net(weight_batch[0]), weight_batch[1]).backward()
    torch.nn.utils.clip_grad_norm_([p for g in w_opt.param_groups for p in g["params"]], 5.0)
    w_opt.step()


def test_frugal_step_equals_nni_step():
    torch.manual_seed(0)
    ref = NniDARTS().mutate_model(build_space("emodarts", **SMALL_SPACE))
    ours = DARTS().mutate_model(build_space("emodarts", **SMALL_SPACE))
    ours.load_state_dict(ref.state_dict())
    cells = [m for m in ours.modules() if isinstance(m, DifferentiableMixedCell)]
    assert cells and all(type(m) is SummedMixedCell for m in cells)
    loss_fn = torch.nn.CrossEntropyLoss()
    opts_ref, opts_ours = _optimizers(ref), _optimizers(ours)
    for step in range(3):
        g = torch.Generator().manual_seed(step)
        arch = (torch.randn(6, 16, 16, generator=g), torch.randint(0, 4, (6,), generator=g))
        train = (torch.randn(6, 16, 16, generator=g), torch.randint(0, 4, (6,), generator=g))
        _full_step(ref, loss_fn, arch, train, *opts_ref)
        darts_step(ours, loss_fn, arch, train, *opts_ours, grad_clip=5.0)
    for (name, a), (_, b) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    assert all(p.requires_grad for p in ours.parameters())  # freezing is undone


def test_frozen_restores_only_what_it_froze():
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1), requires_grad=False)
    with frozen([a, b]):
        assert not a.requires_grad and not b.requires_grad
    assert a.requires_grad and not b.requires_grad


def test_strategy_uses_the_frugal_module():
    from emodarts_nni.strategy.darts.first_order import FrugalDartsModule
    from emodarts_nni.training.module import SerModule

    assert isinstance(DARTS().configure_oneshot_module(SerModule()), FrugalDartsModule)
