"""The hand-designed baselines (paper Sec. IV-B): shapes, batch independence, attention."""

from __future__ import annotations

import pytest
import torch

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.training.baselines import BASELINES, build_baseline

NAMES = sorted(BASELINES)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: a second intra-op thread only adds spin-wait on the shared 2-core box.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("n_mfcc", "frames"), [(16, 24), (40, 64), (7, 3), (1, 1)])
def test_logits_shape_for_any_input_size_and_batch_one(name: str, n_mfcc: int, frames: int):
    model = build_baseline(name, n_mfcc=n_mfcc, frames=frames, n_classes=5)
    model.train()
    assert model(torch.randn(2, n_mfcc, frames)).shape == (2, 5)
    model.eval()
    assert model(torch.randn(1, n_mfcc, frames)).shape == (1, 5)
    assert model(torch.randn(3, 1, n_mfcc, frames)).shape == (3, 5)


@pytest.mark.parametrize("name", NAMES)
def test_a_sample_is_scored_independently_of_its_batch(name: str):
    torch.manual_seed(1)
    model = build_baseline(name, n_mfcc=16, frames=20, n_classes=4).eval()
    batch = torch.randn(6, 16, 20)
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(batch[i : i + 1]) for i in range(len(batch))])
        order = torch.tensor([5, 2, 0, 4, 1, 3])
        permuted = model(batch[order])
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(permuted, together[order], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_output_is_logits_not_probabilities_over_the_batch(name: str):
    model = build_baseline(name, n_mfcc=16, frames=16, n_classes=4).eval()
    with torch.no_grad():
        logits = model(torch.randn(3, 16, 16))
    # The authors' softmax(dim=0) made columns sum to 1; logits do neither.
    assert not torch.allclose(logits.softmax(dim=0).sum(dim=0), logits.sum(dim=0))
    assert not torch.allclose(logits.sum(dim=1), torch.ones(3))


def test_attention_weights_sum_to_one_over_time():
    model = build_baseline("cnn_lstm_att", n_mfcc=16, frames=40, n_classes=4).eval()
    with torch.no_grad():
        _, weights = model.attention(model.sequence(torch.randn(3, 16, 40)))
    assert weights.shape == (3, 11)  # 40 frames → conv 22 → pool 11 time steps
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))


def test_lstm_baselines_accept_any_number_of_frames():
    model = build_baseline("cnn_lstm", n_mfcc=16, frames=32, n_classes=4).eval()
    assert model(torch.randn(2, 16, 57)).shape == (2, 4)


def test_lstm_runs_over_time_so_changing_one_frame_changes_only_that_sample():
    model = build_baseline("cnn_lstm", n_mfcc=8, frames=16, n_classes=4).eval()
    x = torch.randn(2, 8, 16)
    y = x.clone()
    y[0, :, -4:] += 5.0
    with torch.no_grad():
        a, b = model(x), model(y)
    assert not torch.allclose(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("cnn", 30_000, 40_000), ("cnn_lstm", 100_000, 250_000), ("cnn_lstm_att", 100_000, 300_000)],
)
def test_parameter_counts_at_paper_size(name: str, low: int, high: int):
    model = build_baseline(name, n_mfcc=128, frames=128, n_classes=4)
    assert low <= model.num_parameters <= high
    assert model.num_parameters == sum(p.numel() for p in model.parameters())


def test_cnn_baseline_matches_the_papers_35k_parameters():
    assert build_baseline("cnn", n_mfcc=128, frames=128, n_classes=4).num_parameters == 35_019


def test_sizes_are_arguments():
    small = build_baseline("cnn_lstm", n_mfcc=16, frames=16, n_classes=4)
    wide = build_baseline(
        "cnn_lstm", n_mfcc=16, frames=16, n_classes=4, conv_channels=8, lstm_units=32
    )
    assert wide.lstm.hidden_size == 32 and wide.front.conv.out_channels == 8
    assert wide.num_parameters != small.num_parameters


def test_unknown_baseline_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'cnn_lstm_attn'.*did you mean 'cnn_lstm_att'"):
        build_baseline("cnn_lstm_attn", n_mfcc=16, frames=16, n_classes=4)


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="n_classes"):
        build_baseline("cnn", n_mfcc=16, frames=16, n_classes=0)
    with pytest.raises(ConfigError, match="dropout"):
        build_baseline("cnn", n_mfcc=16, frames=16, n_classes=4, dropout=1.5)


def test_cnn_baseline_rejects_a_size_it_was_not_built_for():
    model = build_baseline("cnn", n_mfcc=16, frames=16, n_classes=4)
    with pytest.raises(ValueError, match="16 × 16"):
        model(torch.randn(1, 16, 20))
