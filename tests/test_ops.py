"""Shape contracts of every candidate operation."""

from __future__ import annotations

import pytest
import torch

from emodarts_nni.ops import CNN_OPS, SEQ_OPS, TemporalAttention

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
