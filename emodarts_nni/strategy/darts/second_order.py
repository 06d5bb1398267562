"""Second-order (unrolled) DARTS, the algorithm the emoDARTS authors search with.

Liu, Simonyan and Yang, *DARTS: Differentiable Architecture Search*, ICLR 2019
(arXiv:1806.09055), eq. 6–8. The α gradient is taken at the weights one virtual training
step ahead, ``w' = w - ξ ∇w L_train(w, α)``, instead of at ``w`` (first order):

    dα = ∇α L_val(w', α) - ξ ∇²α,w L_train(w, α) · ∇w' L_val(w', α)

and the Hessian-vector product is a central finite difference,

    ∇²α,w L_train · v ≈ (∇α L_train(w + ε v, α) - ∇α L_train(w - ε v, α)) / (2ε),
    ε = 0.01 / ‖v‖.

As in pt.darts (``architect.py``, which emoDARTS forked), the virtual step is the step the
weight optimiser (SGD) would take next: its learning rate ξ, its momentum buffers and its
weight decay, ``w' = w - ξ (momentum · buf + ∇w L_train + wd · w)`` (another optimiser is
unrolled as plain gradient descent at its learning rate and weight decay). pt.darts and the
emoDARTS code divide the finite difference wrongly, ``(p - n) / 2. * eps`` (= the right
value times ε²); :func:`unrolled_arch_gradient` divides by ``2 * eps`` and a test pins it
against autograd's exact Hessian-vector product.

One :func:`unrolled_arch_gradient` serves both the Lightning module
(:class:`SecondOrderDartsModule`, behind the ``darts-2nd`` strategy) and the plain-PyTorch
:func:`darts_2nd_step` used by benchmarks. Unlike pt.darts it keeps no second copy of the
supernet: the virtual and perturbed weights are written into the network in place and the
saved weights and buffers (BatchNorm running statistics) are copied back exactly afterwards,
so the α step leaves no trace on the network but α. A step costs five forward passes (two
with a full backward, three with a backward to α only) against first-order DARTS's two.

**Common random numbers.** The finite difference subtracts two losses and divides by
2ε = 0.02/‖v‖, so the two passes must compute the *same* function at w + εv and w - εv.
With dropout (the space's default p = 0.3) or SpecAugment masking in the training step,
each pass would draw its own masks, and the difference would be mostly the masks'
difference, not the Hessian's: on a small mixed MLP at ξ = 0.025 the term ξ·H·v came out
about 34 times its dropout-free size and 45 % of ‖∇α L_val‖: first-order DARTS plus noise
(``benchmarks/second_order_noise.py``, docs/strategies.md). So the state of the generators
the passes draw from (torch's CPU generator, which SpecAugment uses even on a GPU, and, only
if CUDA is initialised, the CUDA generators of the devices the model lives on) is taken
before the training pass at w and put back before each side: both sides replay that pass's
masks. The sides then difference one fixed-mask, deterministic function (and converge to
its Hessian-vector product), and it is the function the virtual step used, so dα is the
exact gradient of the sampled unrolled objective (a test pins it against autograd's, masks
included). Afterwards the generators stand where the training and validation passes left
them: later batches draw fresh masks. Python's and NumPy's generators are not covered: no
forward pass here draws from them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn, optim

from emodarts_nni.common.rules import POSITIVE, checked
from emodarts_nni.strategy.darts.first_order import DARTS, FrugalDartsModule, frozen, weight_step

if TYPE_CHECKING:
    from nni.nas.evaluator.pytorch import LightningModule

#: ε = EPSILON_SCALE / ‖∇w' L_val‖ in the finite difference (Liu et al. 2019, footnote of eq. 8).
EPSILON_SCALE = 0.01


@dataclass(frozen=True)
class UnrolledGradient:
    """The pieces of the second-order α gradient of one step.

    ``val_grad`` is ∇α L_val(w', α), ``hessian_product`` the finite-difference
    ∇²α,w L_train · ∇w' L_val, ``xi`` the virtual step's learning rate and ``epsilon`` the
    finite-difference radius (ε = scale / ‖∇w' L_val‖; 0 when that gradient vanishes).
    """

    val_grad: tuple[torch.Tensor, ...]
    hessian_product: tuple[torch.Tensor, ...]
    xi: float
    epsilon: float

    def arch_gradient(self) -> list[torch.Tensor]:
        """dα = ∇α L_val(w', α) - ξ · (Hessian-vector product), one tensor per α."""
        return [g - self.xi * h for g, h in zip(self.val_grad, self.hessian_product, strict=True)]


def _weight_groups(optimizer: optim.Optimizer) -> list[dict[str, Any]]:
    """The weight optimiser's groups, checked: one learning rate ξ, not maximising."""
    groups = optimizer.param_groups
    lrs = {float(g["lr"]) for g in groups}
    if len(lrs) != 1:
        raise ValueError(f"second-order DARTS needs one weight learning rate, got {sorted(lrs)}")
    if any(g.get("maximize", False) for g in groups):
        raise ValueError("second-order DARTS cannot unroll a maximising optimiser")
    return groups


def _virtual_step(
    optimizer: optim.Optimizer, params: list[nn.Parameter], grads: Sequence[torch.Tensor | None]
) -> None:
    """Apply, in place and without touching the optimiser's state, the step SGD would take.

    For :class:`torch.optim.SGD` that is its own next step (momentum buffers, dampening,
    Nesterov, weight decay). Any other optimiser is unrolled as plain gradient descent with
    its learning rate and weight decay (DARTS's eq. 6), not as its own update rule.
    """
    sgd = isinstance(optimizer, optim.SGD)
    grad_of = {id(p): g for p, g in zip(params, grads, strict=True)}
    with torch.no_grad():
        for group in optimizer.param_groups:
            lr, weight_decay = group["lr"], group.get("weight_decay", 0.0)
            momentum = group["momentum"] if sgd else 0.0
            for p in group["params"]:
                if id(p) not in grad_of:
                    continue
                d = grad_of[id(p)]
                d = torch.zeros_like(p) if d is None else d
                if weight_decay:
                    d = d + weight_decay * p
                if momentum:
                    buf = optimizer.state.get(p, {}).get("momentum_buffer")
                    buf = d if buf is None else momentum * buf + (1 - group["dampening"]) * d
                    d = d + momentum * buf if group["nesterov"] else buf
                p.sub_(lr * d)


def _set(params: list[nn.Parameter], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values, strict=True):
            p.copy_(v)


@dataclass(frozen=True)
class _RngState:
    """torch's CPU generator state and those of the CUDA devices in use (index, state)."""

    cpu: torch.Tensor
    cuda: tuple[tuple[int, torch.Tensor], ...]


def _cuda_devices(model: nn.Module) -> list[int]:
    """The CUDA devices ``model`` lives on; none unless CUDA is initialised (so a CPU run
    never initialises it)."""
    if not torch.cuda.is_initialized():
        return []
    tensors = [*model.parameters(), *model.buffers()]
    return sorted({t.get_device() for t in tensors if t.device.type == "cuda"})


def _rng_state(cuda_devices: Sequence[int]) -> _RngState:
    return _RngState(
        torch.get_rng_state(),
        tuple((d, torch.cuda.get_rng_state(d)) for d in cuda_devices),
    )


def _set_rng_state(state: _RngState) -> None:
    torch.set_rng_state(state.cpu)
    for device, cuda_state in state.cuda:
        torch.cuda.set_rng_state(cuda_state, device)


def _zeros_for_none(
    grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like, strict=True)]


def unrolled_arch_gradient(
    model: nn.Module,
    loss: Callable[[Any], torch.Tensor],
    train_batch: Any,
    val_batch: Any,
    alphas: Sequence[nn.Parameter],
    weight_optimizer: optim.Optimizer,
    *,
    epsilon_scale: float = EPSILON_SCALE,
) -> UnrolledGradient:
    """The second-order DARTS α gradient at the network's current weights and α.

    ``loss(batch)`` is the supernet's loss on a batch; ``weight_optimizer`` holds the
    weights, their learning rate ξ and weight decay (and, for SGD, momentum buffers: the
    virtual step is SGD's next step; other optimisers unroll as plain gradient descent). ``model`` is the
    module whose buffers (BatchNorm statistics) the forward passes touch. Weights and
    buffers are restored exactly before returning, also when a forward pass fails; the
    optimiser's state is not changed; no ``.grad`` is written. Both finite-difference
    passes replay the random numbers (dropout masks, augmentation) of the training pass at
    w: common random numbers, see the module; the generators end where the training and
    validation passes left them.
    """
    groups = _weight_groups(weight_optimizer)
    xi = float(groups[0]["lr"])
    alpha_ids = {id(a) for a in alphas}
    weights = [p for g in groups for p in g["params"] if p.requires_grad and id(p) not in alpha_ids]
    alphas = list(alphas)
    saved_weights = [p.detach().clone() for p in weights]
    buffers = list(model.buffers())
    saved_buffers = [b.detach().clone() for b in buffers]
    cuda_devices = _cuda_devices(model)
    train_rng = _rng_state(cuda_devices)  # the sides replay this pass's masks
    try:
        with frozen(alphas):  # ∇w L_train(w, α)
            train_grad = torch.autograd.grad(loss(train_batch), weights, allow_unused=True)
        _virtual_step(weight_optimizer, weights, list(train_grad))  # w → w'
        grads = torch.autograd.grad(loss(val_batch), [*alphas, *weights], allow_unused=True)
        after_rng = _rng_state(cuda_devices)
        val_grad = _zeros_for_none(grads[: len(alphas)], alphas)
        direction = _zeros_for_none(grads[len(alphas) :], weights)  # ∇w' L_val(w', α)
        norm = math.sqrt(sum(float(d.pow(2).sum()) for d in direction))
        if norm == 0.0:  # no direction: the Hessian term vanishes
            zeros = tuple(torch.zeros_like(a) for a in alphas)
            return UnrolledGradient(tuple(val_grad), zeros, xi, 0.0)
        epsilon = epsilon_scale / norm
        sides = []
        for sign in (1.0, -1.0):  # ∇α L_train(w ± ε v, α)
            # Common random numbers: both sides draw the masks of the pass at w, or the
            # difference divided by 2ε is mostly the masks' difference (see the module).
            _set_rng_state(train_rng)
            _set(
                weights,
                [w + sign * epsilon * d for w, d in zip(saved_weights, direction, strict=True)],
            )
            with frozen(weights):
                side = torch.autograd.grad(loss(train_batch), alphas, allow_unused=True)
            sides.append(_zeros_for_none(side, alphas))
        _set_rng_state(after_rng)  # later passes draw fresh masks
        # The correct central difference: divided by 2ε (pt.darts: `(p - n) / 2. * eps`).
        hessian = tuple((p - n) / (2 * epsilon) for p, n in zip(*sides, strict=True))
        return UnrolledGradient(tuple(val_grad), hessian, xi, epsilon)
    finally:
        _set(weights, saved_weights)
        with torch.no_grad():
            for b, saved in zip(buffers, saved_buffers, strict=True):
                b.copy_(saved)


def _assign_arch_gradient(
    alphas: Sequence[nn.Parameter],
    gradient: Sequence[torch.Tensor],
    penalty: torch.Tensor | None,
) -> None:
    """Set ``alpha.grad``: the unrolled gradient plus the gradient of ``penalty`` (if any)."""
    gradient = list(gradient)
    if penalty is not None:
        extra = torch.autograd.grad(penalty, list(alphas), allow_unused=True)
        gradient = [g if e is None else g + e for g, e in zip(gradient, extra, strict=True)]
    for alpha, grad in zip(alphas, gradient, strict=True):
        alpha.grad = grad.detach().clone()


@contextlib.contextmanager
def unlogged(module: nn.Module) -> Iterator[None]:
    """Silence ``module.log``/``log_dict`` in the block: the virtual step's losses would
    otherwise be averaged into the epoch's ``train_loss``."""

    def _no_log(*args: Any, **kwargs: Any) -> None:
        return None

    # NNI's one-shot module sets ``training_module.log`` to its own: put back what was there.
    names = ("log", "log_dict")
    before = {name: module.__dict__[name] for name in names if name in module.__dict__}
    for name in names:
        setattr(module, name, _no_log)
    try:
        yield
    finally:
        for name in names:
            if name in before:
                setattr(module, name, before[name])
            else:
                delattr(module, name)


class SecondOrderDartsModule(FrugalDartsModule):
    """NNI's DARTS module with the unrolled (second-order) α step of :func:`unrolled_arch_gradient`.

    The weight step is :class:`~emodarts_nni.strategy.darts.first_order.FrugalDartsModule`'s (first-order DARTS's).
    ``train_loss`` is logged by the weight step only.
    """

    def __init__(
        self,
        training_module: LightningModule,
        *,
        epsilon_scale: float = EPSILON_SCALE,
        **kwargs: Any,
    ) -> None:
        super().__init__(training_module, **kwargs)
        self.epsilon_scale = epsilon_scale

    def _weight_optimizer(self) -> optim.Optimizer:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        weight = [o for o in optimizers if not getattr(o, "is_arch_optimizer", False)]
        if len(weight) != 1:
            raise ValueError(f"second-order DARTS needs one weight optimiser, got {len(weight)}")
        return getattr(weight[0], "optimizer", weight[0])  # the raw one inside Lightning's

    def arch_step(
        self, trn_batch: Any, val_batch: Any, batch_idx: int, arc_optim: optim.Optimizer
    ) -> None:
        """Phase 1: one α update with the unrolled gradient (train and validation batch)."""

        def loss(batch: Any) -> torch.Tensor:
            out = self.training_module.training_step(batch, 2 * batch_idx)
            return out["loss"] if isinstance(out, dict) else out

        alphas = self.arch_parameters()
        with unlogged(self.training_module):
            result = unrolled_arch_gradient(
                self,
                loss,
                trn_batch,
                val_batch,
                alphas,
                self._weight_optimizer(),
                epsilon_scale=self.epsilon_scale,
            )
        arc_optim.zero_grad()
        _assign_arch_gradient(alphas, result.arch_gradient(), self.arch_penalty())
        arc_optim.step()


class SecondOrderDARTS(DARTS):
    """Second-order DARTS (Liu et al. 2019, arXiv:1806.09055) as an NNI strategy: ``darts-2nd``.

    Parameters are NNI DARTS's (``arc_learning_rate``, ``gradient_clip_val``,
    ``warmup_epochs``, ``log_prob_every_n_step``, ``mutation_hooks``; no ``penalty``) plus
    ``epsilon_scale`` (0.01): the finite difference's radius in weight space. With an SGD
    weight optimiser (ours) the virtual step is SGD's next step; any other optimiser (NNI's
    ``Classification`` uses Adam) is unrolled as plain gradient descent at its learning rate.
    """

    def __init__(self, *, epsilon_scale: float = EPSILON_SCALE, **kwargs: Any) -> None:
        if kwargs.get("penalty") is not None:
            raise ValueError("darts-2nd takes no penalty (NNI's profiler penalty is first-order)")
        scale = checked("epsilon_scale", epsilon_scale, POSITIVE)
        super().__init__(**kwargs)
        self.epsilon_scale = scale

    def configure_oneshot_module(self, training_module: LightningModule) -> SecondOrderDartsModule:
        """The one-shot module that trains the supernet: :class:`SecondOrderDartsModule`."""
        kwargs = self.module_kwargs()
        del kwargs["penalty"]  # refused in __init__: the unrolled gradient has no penalty term
        return SecondOrderDartsModule(training_module, epsilon_scale=self.epsilon_scale, **kwargs)


def darts_2nd_step(
    net: nn.Module,
    loss_fn: nn.Module,
    arch_batch: tuple[torch.Tensor, torch.Tensor],
    weight_batch: tuple[torch.Tensor, torch.Tensor],
    arch_optimizer: optim.Optimizer,
    weight_optimizer: optim.Optimizer,
    grad_clip: float | None = 5.0,
    epsilon_scale: float = EPSILON_SCALE,
) -> UnrolledGradient:
    """One second-order DARTS step outside Lightning (benchmarks, tests); returns its pieces.

    The α update of :class:`SecondOrderDartsModule`, then the weight update of
    :func:`~emodarts_nni.strategy.darts.first_order.darts_step`.
    """
    alphas = [p for g in arch_optimizer.param_groups for p in g["params"]]
    result = unrolled_arch_gradient(
        net,
        lambda batch: loss_fn(net(batch[0]), batch[1]),
        weight_batch,
        arch_batch,
        alphas,
        weight_optimizer,
        epsilon_scale=epsilon_scale,
    )
    arch_optimizer.zero_grad()
    _assign_arch_gradient(alphas, result.arch_gradient(), None)
    arch_optimizer.step()
    weight_step(net, loss_fn, weight_batch, alphas, weight_optimizer, grad_clip)
    return result


__all__ = [
    "EPSILON_SCALE",
    "SecondOrderDARTS",
    "SecondOrderDartsModule",
    "UnrolledGradient",
    "darts_2nd_step",
    "unrolled_arch_gradient",
]
