"""MFCC features: the paper's shape contract, padding and truncation, skipped files, the
cache (a second pass decodes no audio; interruption leaves nothing half-written),
normalisation, the ``emodarts features`` command, and that the embedded corpus is
learnable but not trivially so."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import ConfigError, DataError
from emodarts_nni.data import features as feat
from emodarts_nni.data.features import (
    EMPTY_AUDIO,
    SILENT_AUDIO,
    TRUNCATED_AUDIO,
    UNREADABLE_AUDIO,
    FeatureConfig,
    FeatureConfigError,
    apply_normalisation,
    compute_features,
    extract_features,
    fit_normalisation,
)
from emodarts_nni.data.manifest import PAPER_CLASSES, Utterance, read_manifest, write_manifest

#: A small configuration for speed: 20 MFCCs, 4 s, 128 frames pooled to 32.
SMALL = FeatureConfig(
    n_mfcc=20, n_mels=40, n_fft=512, hop_length=500, max_seconds=4.0, frames=128, pooled_frames=32
)


def voice_like(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a moving pitch and some noise: not silent, not constant."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (0.1 * wave + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def write(path: Path, signal: np.ndarray, rate: int = 16000) -> str:
    sf.write(path, signal, rate, subtype="PCM_16")
    return str(path)


def utt(path: str, label: str = "neutral", speaker: str = "s01F") -> Utterance:
    return Utterance(path=path, label=label, speaker=speaker, session="session1", duration=0.0)


@pytest.fixture
def corpus(tmp_path) -> list[Utterance]:
    """Six good clips of varied length and format, and four unusable files."""
    d = tmp_path / "audio"
    d.mkdir()
    good = [
        utt(write(d / "short.wav", voice_like(0.3, seed=1)), "happy"),
        utt(write(d / "medium.wav", voice_like(2.5, seed=2)), "sad"),
        utt(write(d / "long.wav", voice_like(5.0, seed=3)), "angry", "s02M"),
        utt(write(d / "rate8k.wav", voice_like(1.5, 8000, seed=4), 8000)),
        utt(write(d / "rate44k.wav", voice_like(1.5, 44100, seed=5), 44100), "happy"),
        utt(write(d / "stereo.wav", np.stack([voice_like(1.0, seed=6)] * 2, axis=1)), "sad"),
    ]
    (d / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(2048))
    (d / "zero.wav").write_bytes(b"")
    sf.write(d / "noframes.wav", np.zeros(0, dtype=np.float32), 16000)
    write(d / "silent.wav", np.zeros(16000, dtype=np.float32))
    bad = [utt(str(d / n)) for n in ("corrupt.wav", "zero.wav", "noframes.wav", "silent.wav")]
    return good[:3] + bad[:2] + good[3:] + bad[2:]


# ------------------------------------------------------------------------- shape contract
def test_default_features_are_the_papers_128_by_128():
    config = FeatureConfig()
    assert (config.n_mfcc, config.frames, config.pooled_frames) == (128, 512, 128)
    out = compute_features(voice_like(3.0), config)
    assert out.shape == (128, 128) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_features_are_max_pooled_mfccs_of_the_padded_first_seconds():
    config = FeatureConfig()
    signal = voice_like(3.0)
    padded = np.concatenate([signal, np.zeros(8 * 16000 - len(signal), np.float32)])
    mfcc = librosa.feature.mfcc(
        y=padded, sr=16000, n_mfcc=128, n_fft=1024, hop_length=250, n_mels=128
    )
    assert mfcc.shape[1] >= 512
    expected = mfcc[:, :512].reshape(128, 128, 4).max(axis=2)
    np.testing.assert_allclose(compute_features(signal, config), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "config, shape",
    [
        (SMALL, (20, 32)),
        (
            FeatureConfig(n_mfcc=40, n_mels=64, hop_length=500, frames=256, pooled_frames=64),
            (40, 64),
        ),
        (FeatureConfig(n_mfcc=13, n_mels=26, frames=512, pooled_frames=512), (13, 512)),
    ],
)
def test_other_sizes(config, shape):
    assert config.shape == shape
    assert compute_features(voice_like(1.0), config).shape == shape


def test_short_clips_are_zero_padded_and_long_clips_truncated():
    config = SMALL  # 4 s
    clip = voice_like(1.5)
    with_silence = np.concatenate([clip, np.zeros(16000 * 3, np.float32)])
    np.testing.assert_array_equal(
        compute_features(clip, config), compute_features(with_silence, config)
    )
    long = voice_like(6.0)
    tail_changed = long.copy()
    tail_changed[4 * 16000 :] = voice_like(2.0, seed=9)
    np.testing.assert_array_equal(
        compute_features(long, config), compute_features(tail_changed, config)
    )
    assert not np.array_equal(
        compute_features(long, config), compute_features(voice_like(6.0, seed=1), config)
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(frames=500), "multiple of pooled_frames"),
        (dict(n_mfcc=130), "cannot exceed n_mels"),
        (dict(hop_length=1000), "fewer than frames"),
        (dict(normalisation="global"), "normalisation"),
        (dict(n_fft=0), "n_fft must be a positive integer"),
        (dict(max_seconds=-1.0), "max_seconds"),
        (dict(n_fft=128), "fewer than n_mels"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(FeatureConfigError, match=message) as caught:
        FeatureConfig(**kwargs)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ConfigError)


# --------------------------------------------------------------------- corpus extraction
def test_unusable_files_are_skipped_and_counted_never_dropped_silently(corpus, tmp_path, capsys):
    result = extract_features(
        corpus, SMALL, cache_dir=tmp_path / "cache", workers=1, progress=False
    )
    names = [Path(u.path).name for u in result.utterances]
    assert names == [
        "short.wav",
        "medium.wav",
        "long.wav",
        "rate8k.wav",
        "rate44k.wav",
        "stereo.wav",
    ]
    assert result.features.shape == (6, 20, 32) and result.features.dtype == np.float32
    assert result.skipped == Counter({UNREADABLE_AUDIO: 1, EMPTY_AUDIO: 2, SILENT_AUDIO: 1})
    assert sorted(Path(p).name for p in result.skipped_paths[EMPTY_AUDIO]) == [
        "noframes.wav",
        "zero.wav",
    ]
    assert [Path(p).name for p in result.skipped_paths[UNREADABLE_AUDIO]] == ["corrupt.wav"]
    assert "kept 6 of 10 utterances" in capsys.readouterr().err


def test_missing_file_is_skipped_as_unreadable(tmp_path):
    there = utt(write(tmp_path / "there.wav", voice_like(1.0)))
    gone = utt(str(tmp_path / "gone.wav"))
    result = extract_features([there, gone], SMALL, cache_dir=tmp_path, workers=1, progress=False)
    assert [u.path for u in result.utterances] == [there.path]
    assert result.skipped_paths == {UNREADABLE_AUDIO: [gone.path]}


def test_stereo_and_odd_rates_give_the_features_of_their_mono_16k_content(tmp_path):
    mono = voice_like(1.0, seed=6)
    rows = [
        utt(write(tmp_path / "mono.wav", mono)),
        utt(write(tmp_path / "stereo.wav", np.stack([mono, mono], axis=1))),
        utt(
            write(
                tmp_path / "r44.wav", librosa.resample(mono, orig_sr=16000, target_sr=44100), 44100
            )
        ),
    ]
    x = np.asarray(
        extract_features(rows, SMALL, cache_dir=tmp_path, workers=1, progress=False).features
    )
    np.testing.assert_allclose(x[1], x[0], atol=1e-4)
    assert np.abs(x[2] - x[0]).mean() < 0.05 * np.abs(x[0]).mean()


def test_parallel_extraction_matches_serial(corpus, tmp_path):
    serial = extract_features(corpus, SMALL, cache_dir=tmp_path / "a", workers=1, progress=False)
    parallel = extract_features(corpus, SMALL, cache_dir=tmp_path / "b", workers=2, progress=False)
    np.testing.assert_array_equal(np.asarray(serial.features), np.asarray(parallel.features))
    assert serial.skipped == parallel.skipped


# ---------------------------------------------------------------------------------- cache
def no_decoding(*args, **kwargs):
    raise AssertionError("audio was decoded although everything was cached")


def test_second_pass_decodes_no_audio_and_is_memory_mapped(corpus, tmp_path, monkeypatch):
    first = extract_features(corpus, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    monkeypatch.setattr(feat, "load_audio", no_decoding)
    second = extract_features(corpus, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    assert isinstance(second.features, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.features), np.asarray(second.features))
    assert second.utterances == first.utterances
    assert second.skipped == first.skipped and second.skipped_paths == first.skipped_paths
    assert second.cache_dir == tmp_path / "features" / SMALL.cache_key()


def test_new_manifest_over_cached_files_reuses_per_utterance_results(corpus, tmp_path, monkeypatch):
    extract_features(corpus, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    monkeypatch.setattr(feat, "load_audio", no_decoding)
    subset = extract_features(
        corpus[::-1][:7], SMALL, cache_dir=tmp_path, workers=1, progress=False
    )
    assert len(subset.utterances) + sum(subset.skipped.values()) == 7


def test_edited_file_is_recomputed(tmp_path, monkeypatch):
    path = write(tmp_path / "a.wav", voice_like(1.0, seed=1))
    before = extract_features([utt(path)], SMALL, cache_dir=tmp_path, workers=1, progress=False)
    before = np.array(before.features)
    write(tmp_path / "a.wav", voice_like(1.2, seed=2))
    decoded = []
    real = feat.load_audio
    monkeypatch.setattr(feat, "load_audio", lambda *a: decoded.append(a) or real(*a))
    after = extract_features([utt(path)], SMALL, cache_dir=tmp_path, workers=1, progress=False)
    assert len(decoded) == 1
    assert not np.array_equal(before, np.asarray(after.features))


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_interrupted_extraction_keeps_finished_files_and_nothing_partial(
    corpus, tmp_path, monkeypatch
):
    real = feat.compute_features
    calls = []

    def interrupt_third(signal, config):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(signal, config)

    monkeypatch.setattr(feat, "compute_features", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        extract_features(corpus, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    files = cache_files(tmp_path)
    assert not [p for p in files if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not [p for p in files if p.name.startswith("stack-")]
    finished = [p for p in files if p.suffix == ".npy"]
    assert len(finished) == 2 and all(np.load(p).shape == (20, 32) for p in finished)

    monkeypatch.setattr(feat, "compute_features", real)
    decoded = []
    real_load = feat.load_audio
    monkeypatch.setattr(feat, "load_audio", lambda *a: decoded.append(a) or real_load(*a))
    result = extract_features(corpus, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    assert len(result.utterances) == 6
    assert len(decoded) == len(corpus) - 2 - sum(1 for p in files if p.name.endswith(".skip.json"))


def test_interruption_while_writing_leaves_no_partial_file(tmp_path, monkeypatch):
    path = write(tmp_path / "a.wav", voice_like(1.0))

    def half_written(fh, array, **kwargs):
        fh.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(feat.np, "save", half_written)
    with pytest.raises(KeyboardInterrupt):
        extract_features(
            [utt(path)], SMALL, cache_dir=tmp_path / "cache", workers=1, progress=False
        )
    leftovers = [p for p in cache_files(tmp_path / "cache") if p.name != "config.json"]
    assert leftovers == []


# -------------------------------------------------------------------------- normalisation
def test_fit_normalisation_uses_only_the_given_rows_and_all_their_frames():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(10, 5, 8)).astype(np.float32)
    x[7:] += 100.0  # "test" rows, far away: must not influence the statistics
    x[:, 4] = 1.5  # a constant coefficient
    stats = fit_normalisation(x, [0, 2, 4, 6, 5, 3, 1])
    train = x[:7].transpose(1, 0, 2).reshape(5, -1)
    np.testing.assert_allclose(stats.mean, train.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(stats.std[:4], train.std(axis=1)[:4], rtol=1e-4)
    assert stats.std[4] == 1.0
    z = apply_normalisation(x[:7], stats)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, :4].std(axis=(0, 2)), 1.0, atol=1e-4)
    np.testing.assert_allclose(apply_normalisation(x[0], stats), z[0], atol=1e-6)
    assert type(stats).from_dict(stats.to_dict()).mean.tolist() == stats.mean.tolist()


def test_normalisation_rejects_mismatched_shapes():
    stats = fit_normalisation(np.ones((2, 3, 4), np.float32), [0])
    with pytest.raises(ValueError, match="3 coefficients"):
        apply_normalisation(np.ones((2, 5, 4), np.float32), stats)
    with pytest.raises(ValueError, match="no rows"):
        fit_normalisation(np.ones((2, 3, 4), np.float32), [])


def test_utterance_normalisation_is_applied_at_extraction():
    config = FeatureConfig(**{**SMALL.__dict__, "normalisation": "utterance"})
    out = compute_features(voice_like(3.0), config)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-4)
    stds = out.std(axis=1)
    assert np.all((np.abs(stds - 1) < 1e-3) | (stds < 1e-6))


def test_train_and_none_share_raw_features_utterance_has_its_own_cache():
    raw = {n: FeatureConfig(normalisation=n).cache_key() for n in ("none", "train", "utterance")}
    assert raw["none"] == raw["train"] != raw["utterance"]
    assert FeatureConfig(n_mfcc=40).cache_key() != raw["none"]


# -------------------------------------------------------------------------------- the CLI
def test_features_command_reports_counts_skips_and_cache(corpus, tmp_path, capsys):
    manifest = write_manifest(corpus, tmp_path / "manifest.csv")
    argv = [
        "features",
        str(manifest),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--workers",
        "1",
        "--n-mfcc",
        "20",
        "--n-mels",
        "40",
        "--n-fft",
        "512",
        "--hop-length",
        "500",
        "--max-seconds",
        "4",
        "--frames",
        "128",
        "--pooled-frames",
        "32",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "6 of 10 utterances kept -> 6 x 20 x 32 float32" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["speaker"] == ["neutral", "happy", "sad", "angry", "total"]
    assert lines["s01F"] == ["1", "2", "2", "0", "5"]
    assert lines["s02M"] == ["0", "0", "0", "1", "1"]
    assert "skipped, empty audio (2):" in out and "zero.wav" in out
    assert f"cache: {tmp_path / 'cache' / 'features'}" in out


def test_features_command_bad_input_is_one_line_error(tmp_path, capsys):
    assert main(["features", str(tmp_path / "nothing.csv")]) == 2
    assert "manifest not found" in capsys.readouterr().err
    manifest = write_manifest([utt(write(tmp_path / "a.wav", voice_like(1.0)))], tmp_path / "m.csv")
    assert main(["features", str(manifest), "--frames", "100", "--pooled-frames", "64"]) == 2
    assert "multiple of pooled_frames" in capsys.readouterr().err


# -------------------------------------------------------------- damaged cache, bad audio
def truncate_wav(path: Path, *, keep: float = 1.0, claim: int | None = None) -> None:
    """Cut the file (keeping ``keep`` of it) and/or set the data chunk's declared size."""
    data = path.read_bytes()
    if claim is not None:
        at = data.index(b"data") + 4
        data = data[:at] + claim.to_bytes(4, "little") + data[at + 4 :]
    path.write_bytes(data[: int(len(data) * keep)] if keep < 1 else data)


def test_a_truncated_cached_array_is_detected_and_extracted_again(tmp_path, capsys):
    utterances = [utt(write(tmp_path / f"{i}.wav", voice_like(1.0, seed=i))) for i in range(3)]
    first = extract_features(utterances, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    expected = np.array(first.features)
    items = sorted((first.cache_dir / "utterances").glob("*.npy"))
    items[1].write_bytes(items[1].read_bytes()[:100])  # hand-truncated
    for stack in first.cache_dir.glob("stack-*"):
        stack.unlink()  # e.g. a new manifest over the same files
    capsys.readouterr()
    again = extract_features(utterances, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    np.testing.assert_array_equal(np.asarray(again.features), expected)
    assert "damaged cache file for" in capsys.readouterr().err
    assert np.load(items[1]).shape == (20, 32)


def test_a_damaged_skip_note_is_redone_not_fatal(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    utterances = [utt(str(tmp_path / "zero.wav")), utt(write(tmp_path / "a.wav", voice_like(1)))]
    first = extract_features(utterances, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    (note,) = (first.cache_dir / "utterances").glob("*.skip.json")
    note.write_text("{")
    for stack in first.cache_dir.glob("stack-*"):
        stack.unlink()
    again = extract_features(utterances, SMALL, cache_dir=tmp_path, workers=1, progress=False)
    assert again.skipped == {EMPTY_AUDIO: 1} and len(again) == 1


def test_truncated_wavs_are_kept_with_a_warning_each_and_a_count(tmp_path, capsys):
    short = tmp_path / "short.wav"
    write(short, voice_like(2.0, seed=1))
    truncate_wav(short, keep=0.5)  # data chunk shorter than the header says
    huge = tmp_path / "huge.wav"
    write(huge, voice_like(1.0, seed=2))
    truncate_wav(huge, claim=0xFFFFFFFF)  # a header claiming 4 GB
    whole = write(tmp_path / "whole.wav", voice_like(1.0, seed=3))
    utterances = [utt(str(short)), utt(str(huge)), utt(whole)]
    for attempt in ("extracted", "cached"):
        result = extract_features(utterances, SMALL, cache_dir=tmp_path, workers=1, progress=False)
        err = capsys.readouterr().err
        assert len(result) == 3, attempt
        assert result.warned == {TRUNCATED_AUDIO: [str(short), str(huge)]}, attempt
        assert f"truncated audio, used as is: {short}" in err
        assert f"truncated audio, used as is: {huge}" in err and "whole.wav" not in err
        assert "kept all 3 utterances; 2 truncated audio used as is" in err


def test_the_features_command_lists_truncated_files(tmp_path, capsys):
    path = tmp_path / "cut.wav"
    write(path, voice_like(2.0))
    truncate_wav(path, keep=0.6)
    manifest = write_manifest([utt(str(path))], tmp_path / "m.csv")
    argv = ["features", str(manifest), "--cache-dir", str(tmp_path / "c"), "--no-progress"]
    assert main([*argv, "--workers", "1"]) == 0
    assert f"kept, truncated audio (1): {path}" in capsys.readouterr().out


def test_a_cache_dir_that_is_a_file_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = write(tmp_path / "a.wav", voice_like(1.0))
    with pytest.raises(DataError, match=f"feature cache .*: {blocker} is a file, not a folder"):
        extract_features([utt(path)], SMALL, cache_dir=blocker, workers=1, progress=False)
    manifest = write_manifest([utt(path)], tmp_path / "m.csv")
    assert main(["features", str(manifest), "--cache-dir", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"emodarts: error: --cache-dir {blocker}: exists and is not a folder"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_cache_files_follow_the_umask(tmp_path, umask):
    path = write(tmp_path / "a.wav", voice_like(1.0))
    old = os.umask(umask)
    try:
        result = extract_features([utt(path)], SMALL, cache_dir=tmp_path / "c", progress=False)
    finally:
        os.umask(old)
    files = [p for p in result.cache_dir.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".npy", ".json"}
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask}


# ------------------------------------------------------------------------- learnability
def test_embedded_corpus_is_learnable_but_not_trivially(tmp_path):
    """A tiny CNN trained on some speakers recognises held-out speakers' emotions clearly
    above chance (0.25 for four classes) but not perfectly (leave-one-session-out)."""
    import torch
    from torch import nn

    from emodarts_nni.data.synth import synthesize_corpus

    manifest = synthesize_corpus(
        tmp_path / "corpus",
        seed=0,
        n_speakers=8,
        n_sessions=4,
        utterances_per_class_per_speaker=8,
        workers=2,
        progress=False,
    )
    config = FeatureConfig(n_mfcc=40, n_mels=64, hop_length=500, frames=256, pooled_frames=64)
    data = extract_features(
        read_manifest(manifest), config, cache_dir=tmp_path, workers=2, progress=False
    )
    x = np.asarray(data.features)
    y = np.array([PAPER_CLASSES.index(u.label) for u in data.utterances])
    session = np.array([u.session for u in data.utterances])
    assert x.shape == (256, 40, 64) and not data.skipped

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two busy cores: one thread is several times faster here
    try:
        recalls = []
        for held_out in sorted(set(session)):
            test = session == held_out
            z = apply_normalisation(x, fit_normalisation(x, np.flatnonzero(~test)))
            predicted = _train_tiny_cnn(torch, nn, z[~test], y[~test], z[test])
            recalls.append([np.mean(predicted[y[test] == c] == c) for c in range(4)])
    finally:
        torch.set_num_threads(threads)
    ua_per_fold = np.mean(recalls, axis=1)
    assert ua_per_fold.mean() >= 0.45, ua_per_fold
    assert ua_per_fold.max() < 1.0, ua_per_fold


def _train_tiny_cnn(torch, nn, x_train, y_train, x_test, epochs: int = 20) -> np.ndarray:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(x_train.shape[1], 32, 5, padding=2),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Conv1d(32, 32, 3, padding=1),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.AdaptiveMaxPool1d(1),
        nn.Flatten(),
        nn.Linear(32, 4),
    )
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 16):
            batch = order[start : start + 16]
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x_test))).argmax(dim=1).numpy()
