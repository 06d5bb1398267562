"""Shape contracts of every candidate operation."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from emodarts_nni.space.ops import (
    CNN_OPS,
    SEQ_OPS,
    DepthwiseConv2d,
    LayoutSwitch,
    MaxPool2d,
    TemporalAttention,
    channels_last_pays,
)

PAPER_CNN_OPS = {
    "max_pool_3x3",
    "avg_pool_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_7x1_1x7",
    "skip_connect",
    "none",
}
PAPER_SEQ_OPS = (
    {f"{k}_{n}" for k in ("rnn", "lstm") for n in (1, 2, 3, 4)}
    | {f"{k}_att_{n}" for k in ("rnn", "lstm") for n in (1, 2)}
    | {"skip_connect", "none"}
)


def test_op_tables_are_the_papers():
    assert set(CNN_OPS) == PAPER_CNN_OPS
    assert set(SEQ_OPS) == PAPER_SEQ_OPS


@pytest.mark.parametrize("name", sorted(CNN_OPS))
@pytest.mark.parametrize("size", [(16, 16), (15, 9)])
@pytest.mark.parametrize("stride", [1, 2])
def test_cnn_op_shape(name, size, stride):
    op = CNN_OPS[name](6, stride)
    x = torch.randn(3, 6, *size, requires_grad=True)
    y = op(x)
    expected = [(s + stride - 1) // stride for s in size]  # ceil: same as a padded conv
    assert y.shape == (3, 6, *expected)
    if name != "none":
        y.sum().backward()


def test_cnn_none_is_zero():
    assert CNN_OPS["none"](4, 2)(torch.randn(2, 4, 8, 8)).abs().sum() == 0


@pytest.mark.parametrize("name", sorted(SEQ_OPS))
@pytest.mark.parametrize("steps", [1, 7, 32])
def test_seq_op_shape(name, steps):
    op = SEQ_OPS[name](10)
    x = torch.randn(2, steps, 10, requires_grad=True)
    y = op(x)
    assert y.shape == x.shape
    if name != "none":
        y.sum().backward()
        assert x.grad is not None


def test_seq_ops_stack_the_named_number_of_layers():
    for kind in ("rnn", "lstm"):
        for layers in (1, 2, 3, 4):
            assert SEQ_OPS[f"{kind}_{layers}"](8).rnn.num_layers == layers
        for layers in (1, 2):
            assert SEQ_OPS[f"{kind}_att_{layers}"](8)[0].rnn.num_layers == layers
    assert isinstance(SEQ_OPS["lstm_1"](8).rnn, torch.nn.LSTM)
    assert isinstance(SEQ_OPS["rnn_1"](8).rnn, torch.nn.RNN)


def test_attention_is_over_time_steps():
    att = TemporalAttention(6)
    h = torch.randn(3, 11, 6)
    w = att.weights(h)
    assert w.shape == (3, 11)  # one score per time step, not per feature
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3))
    # Changing one step of one sample changes that sample's context only.
    h2 = h.clone()
    h2[0, 5] += 3.0
    out, out2 = att(h), att(h2)
    assert not torch.allclose(out[0, 0], out2[0, 0])
    torch.testing.assert_close(out[1:], out2[1:])


def test_odd_hidden_size_is_rejected():
    with pytest.raises(ValueError, match="even"):
        SEQ_OPS["lstm_1"](7)


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"),
    [(3, 1, 1), (3, 2, 1), (5, 1, 1), (3, 1, 2), (5, 1, 2), (5, 2, 1), (3, 2, 2), (5, 2, 2)],
)
@pytest.mark.parametrize("side", [1, 3, 5, 16])
def test_depthwise_conv_in_channels_last_gives_nchw_values_and_gradients(
    kernel, stride, dilation, side
):
    torch.manual_seed(0)
    ours = DepthwiseConv2d(8, kernel, stride, dilation * (kernel - 1) // 2, dilation)
    assert ours.channels_last
    plain = nn.Conv2d(8, 8, kernel, stride, ours.padding, dilation=dilation, groups=8, bias=False)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(4, 8, side, side + 2)
    outputs = []
    for conv in (plain, ours):
        xi = x.clone().requires_grad_()
        y = conv(xi)
        y.backward(torch.ones_like(y))
        outputs.append((y, xi.grad, conv.weight.grad))
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)  # summation order
    assert outputs[1][0].is_contiguous()  # NCHW again for the ops after it


@pytest.mark.parametrize("channels", [8, 16])  # the grid's kernel in channels-last, in NCHW
@pytest.mark.parametrize(("kernel", "side"), [(3, 1), (3, 6), (5, 7), (5, 12)])
def test_dilated_strided_depthwise_conv_runs_on_its_grid_with_the_same_values(
    channels, kernel, side
):
    """Dilation 2 at stride 2 reads every second row and column only: run at stride 1 there,
    the values and gradients are the strided kernel's (``subsample=False``)."""
    torch.manual_seed(0)
    conv = DepthwiseConv2d(channels, kernel, 2, kernel - 1, 2)
    assert conv.grid == 2
    assert conv.channels_last == channels_last_pays(channels, kernel, 1, 1)
    x = torch.randn(3, channels, side, side + 3)
    results = []
    for subsample in (True, False):
        conv.subsample = subsample
        conv.zero_grad()
        xi = x.clone().requires_grad_()
        y = conv(xi)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        results.append((y, xi.grad, conv.weight.grad))
    assert results[0][0].is_contiguous()
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # summation order


def test_depthwise_conv_runs_on_a_grid_only_where_every_tap_falls_on_it():
    assert DepthwiseConv2d(8, 3, 2, 2, 2).grid == 2
    assert DepthwiseConv2d(8, 3, 2, 1, 1).grid == 1  # undilated: taps on both grids
    assert DepthwiseConv2d(8, 3, 2, 1, 2).grid == 1  # odd padding: the other grid
    assert DepthwiseConv2d(8, 3, 1, 2, 2).grid == 1  # stride 1: nothing to skip


def test_depthwise_conv_keeps_nchw_where_channels_last_is_slower():
    assert not channels_last_pays(16, 3, 1, 1)  # NCHW's fast 3 × 3 path from 16 channels
    assert channels_last_pays(8, 3, 1, 1) and channels_last_pays(8, 3, 2, 1)
    assert not channels_last_pays(16, 3, 2, 2) and not channels_last_pays(16, 5, 2, 2)
    assert channels_last_pays(32, 5, 1, 1) and channels_last_pays(32, 3, 1, 2)


def _saved_bytes_and_result(op: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Bytes of the distinct storages autograd keeps for ``op``'s backward, and its output."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = op(x)
    return sum(storages.values()), y


def _all_nchw(op: nn.Module) -> nn.Module:
    for m in op.modules():
        if isinstance(m, LayoutSwitch):
            m.channels_last = False
    return op


CHANNELS_LAST_OPS = ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"]


@pytest.mark.parametrize("name", CHANNELS_LAST_OPS)
def test_channels_last_ops_keep_no_more_for_backward_than_nchw(name):
    torch.manual_seed(0)
    fast = CNN_OPS[name](8, 1)
    plain = _all_nchw(CNN_OPS[name](8, 1))
    plain.load_state_dict(fast.state_dict())
    assert any(m.channels_last for m in fast.modules() if isinstance(m, LayoutSwitch))
    x = torch.randn(4, 8, 12, 12, requires_grad=True)
    kept_fast, y_fast = _saved_bytes_and_result(fast, x)
    kept_plain, y_plain = _saved_bytes_and_result(plain, x)
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-4, atol=1e-5)
    assert y_fast.is_contiguous()
    assert kept_fast <= kept_plain, (kept_fast, kept_plain)


@pytest.mark.parametrize("name", CHANNELS_LAST_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_channels_last_ops_give_nchw_gradients(name, stride):
    """The kernels of an op in channels-last: NCHW's values and gradients."""
    torch.manual_seed(0)
    fast = CNN_OPS[name](8, stride)
    plain = _all_nchw(CNN_OPS[name](8, stride))
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(4, 8, 11, 13)
    results = []
    for op in (fast, plain):
        xi = x.clone().requires_grad_()
        y = op(xi)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        results.append([y, xi.grad, *(p.grad for p in op.parameters())])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("side", [1, 2, 5, 16])
def test_max_pool_in_channels_last_is_nchw_max_pool_exactly(side):
    pool = MaxPool2d(1)
    assert pool.channels_last and not MaxPool2d(2).channels_last
    x = torch.randn(4, 8, side, side + 3)
    x[:, :, :, 1] = x[:, :, :, 0]  # ties: the gradient goes where NCHW's kernel sends it
    results = []
    for op in (pool, nn.MaxPool2d(3, 1, 1)):
        xi = x.clone().requires_grad_()
        y = op(xi)
        y.backward(torch.arange(y.numel(), dtype=y.dtype).view_as(y))
        results.append((y, xi.grad))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
    assert results[0][0].is_contiguous()


def _edge(candidates, weights, shared: bool, x: torch.Tensor) -> torch.Tensor:
    from emodarts_nni.strategy.supermodule.summed import weighted_sum

    if shared:
        return weighted_sum(candidates, x, weights)
    return sum(w * op(x) for w, op in zip(weights, candidates, strict=False))


def test_an_edge_shares_one_relu_among_its_candidates():
    """``weighted_sum`` makes ``relu(x)`` once per layout for the ops that start with it:
    the same values and gradients as every op on its own, less kept for backward."""
    from emodarts_nni.space.ops import StartsWithReLU

    torch.manual_seed(0)
    names = [n for n in CNN_OPS if n != "none"]
    for stride in (1, 2):
        candidates = [CNN_OPS[n](8, stride) for n in names]
        assert sum(isinstance(op, StartsWithReLU) for op in candidates) == 5 + (stride == 2)
        weights = torch.softmax(torch.randn(len(names) + 1), 0).requires_grad_()
        x = torch.randn(4, 8, 12, 12)
        results = []
        for shared in (True, False):
            xi = x.clone().requires_grad_()
            wi = weights.detach().clone().requires_grad_()
            kept, y = _saved_bytes_and_result(partial(_edge, candidates, wi, shared), xi)
            y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
            results.append((kept, [y, xi.grad, wi.grad]))
        (kept_shared, shared), (kept_apart, apart) = results
        for a, b in zip(shared, apart, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        # Five (six with FactorizedReduce) ReLU outputs kept become one per layout.
        assert kept_shared <= kept_apart - 3 * x.numel() * 4, (kept_shared, kept_apart)


@pytest.mark.parametrize(("c_in", "channels_last"), [(24, True), (12, True), (16, False)])
def test_preprocessing_conv_in_channels_last_gives_nchw_values_and_gradients(c_in, channels_last):
    from emodarts_nni.space.ops import ReLUConvBN

    torch.manual_seed(0)
    ours = ReLUConvBN(c_in, 8, 1, 1, 0)
    assert ours.channels_last == channels_last
    x = torch.randn(4, c_in, 7, 10)
    results = []
    for flag in (True, False):
        ours.channels_last = flag and channels_last
        ours.zero_grad()
        xi = x.clone().requires_grad_()
        y = ours(xi)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        results.append((y, xi.grad, ours[1].weight.grad))
    assert results[0][0].is_contiguous()
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_reduction_edge_reads_each_grid_of_its_input_once():
    """The dilated convolutions and FactorizedReduce of a reduction edge share one copy of
    each grid they read: backward makes one whole-map gradient per grid, not one per op."""
    from emodarts_nni.space.ops import ActivatedInput

    x = torch.randn(2, 8, 7, 6, requires_grad=True)
    activated = ActivatedInput(x)
    even, odd = activated.grid(2), activated.grid(2, offset=1)
    assert activated.grid(2) is even and activated.grid(2, offset=1) is odd
    torch.testing.assert_close(even, torch.relu(x)[:, :, ::2, ::2], rtol=0, atol=0)
    torch.testing.assert_close(odd, torch.relu(x)[:, :, 1::2, 1::2], rtol=0, atol=0)
    in_cl = activated.grid(2, channels_last=True)
    assert in_cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(in_cl, even)
    names = ("dil_conv_3x3", "dil_conv_5x5", "skip_connect")
    ops = [CNN_OPS[n](8, 2) for n in names]
    slices = []
    y = sum(op.after_relu(activated) for op in ops)
    pending, seen = [y.grad_fn], set()
    while pending:  # every slicing node of the graph: one per grid
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        slices += [node] if "Slice" in type(node).__name__ else []
        pending += [n for n, _ in node.next_functions]
    assert len(slices) == 4, slices  # each grid: one row slice, one column slice


@pytest.mark.parametrize("stride", [1, 2])
def test_an_edge_does_not_compute_its_none_candidate(stride):
    """The ``none`` op's term of the weighted sum is zero: skipped, the edge's value and the
    gradients of x and of every α weight (``none``'s included) are the full sum's."""
    from emodarts_nni.space.ops import Zero
    from emodarts_nni.strategy.supermodule.summed import weighted_sum

    torch.manual_seed(0)
    candidates = [CNN_OPS[n](8, stride) for n in ("none", "sep_conv_3x3", "none", "avg_pool_3x3")]
    x = torch.randn(4, 8, 9, 9)
    alpha = torch.randn(len(candidates) + 1)
    results = []
    for skip in (True, False):
        xi, ai = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        weights = torch.softmax(ai, 0)
        if skip:
            y = weighted_sum(candidates, xi, weights)
        else:
            y = sum(w * op(xi) for w, op in zip(weights, candidates, strict=False))
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        results.append((y, xi.grad, ai.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    only = weighted_sum([Zero(stride)], x, torch.ones(2))  # an edge of none alone: zeros
    assert only.shape == x[..., ::stride, ::stride].shape and not only.any()


@pytest.mark.parametrize("side", [1, 2, 5, 8, 13])
def test_factorized_reduce_equals_its_two_strided_convolutions(side):
    """Subsampling before the 1×1 convs gives the stride-2 convs' values and gradients."""
    from emodarts_nni.space.ops import FactorizedReduce

    torch.manual_seed(0)
    reduce = FactorizedReduce(6, 7)
    x = torch.randn(3, 6, side, side + 1)

    results = []
    for subsample in (True, False):  # False: the nn.Conv2d modules at stride 2
        reduce.subsample = subsample
        xi = x.clone().requires_grad_()
        reduce.zero_grad()
        y = reduce(xi)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        results.append([y, xi.grad, reduce.conv_1.weight.grad, reduce.conv_2.weight.grad])
    assert results[0][0].shape[-2:] == ((side + 1) // 2, (side + 2) // 2)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
