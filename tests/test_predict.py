"""``emodarts predict`` and ``emodarts_nni.Predictor``: a quickstart checkpoint on new audio."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from quickstart_run import quickstart_checkpoint
from unseen_audio import LONG_TEXT, SHORT_TEXT, write_unseen

import emodarts_nni
from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import DataError
from emodarts_nni.inference.predict import (
    MIN_SPEAKER_RECORDINGS,
    FewRecordingsWarning,
    Predictor,
)

pytestmark = pytest.mark.e2e  # the shared checkpoint comes from a (tiny) quickstart run


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return quickstart_checkpoint(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def predictor(checkpoint) -> Predictor:
    return emodarts_nni.Predictor.from_checkpoint(checkpoint)


@pytest.fixture(scope="session")
def audio(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("unseen")
    (folder / "nested" / "deeper").mkdir(parents=True)
    return {
        "short": write_unseen(folder / "short.wav", SHORT_TEXT, 3.0, seed=1),
        "long": write_unseen(folder / "nested" / "deeper" / "long.wav", LONG_TEXT, 26.0, seed=2),
    }


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_and_python_give_identical_predictions(checkpoint, predictor, audio, tmp_path, capsys):
    paths = [audio["short"], audio["long"]]
    out = tmp_path / "predictions.jsonl"
    status, _, err = _cli(capsys, checkpoint, *paths, "--format", "jsonl", "-o", out)
    assert status == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == predictor.predict_files(paths)  # the very same numbers
    for line, path in zip(lines, paths, strict=True):
        assert set(line) == {"path", "label", "probabilities"}
        assert line["path"] == str(path)
        assert list(line["probabilities"]) == predictor.class_names
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert line["label"] == max(line["probabilities"], key=line["probabilities"].get)
        single = predictor.predict_file(path)  # one file per batch: equal up to float noise
        assert single["label"] == line["label"]
        for name, p in single["probabilities"].items():
            assert p == pytest.approx(line["probabilities"][name], abs=1e-6)


def test_the_training_feature_pipeline_reproduces_the_runs_own_test_predictions(
    checkpoint, predictor, capsys
):
    """Scored from the audio files, one held-out speaker's utterances get the probabilities
    ``predictions.csv`` recorded from the training pipeline's cached, normalised features —
    with that speaker's own statistics (the quickstart normalises per speaker), through
    Python and through ``emodarts predict --same-speaker``."""
    assert predictor.normalisation_mode == "speaker"
    with (checkpoint.parent / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    speaker = rows[0]["speaker"]
    rows = [row for row in rows if row["speaker"] == speaker]  # all of that speaker's
    paths = [row["path"] for row in rows]
    stats = predictor.speaker_statistics(paths)
    results = predictor.predict_files(paths, speaker=stats)
    for row, result in zip(rows, results, strict=True):
        assert result["label"] == row["predicted"]
        for name in predictor.class_names:
            assert result["probabilities"][name] == pytest.approx(float(row[f"p_{name}"]), abs=2e-6)
    status, out, err = _cli(capsys, checkpoint, *paths, "--same-speaker", "--format", "jsonl")
    assert status == 0 and "note:" not in err
    assert [json.loads(line) for line in out.splitlines()] == results
    # predict_speaker (what --same-speaker runs) reads and analyses each file once
    calls: list[str] = []
    original = predictor._raw_features
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predictor, "_raw_features", lambda path: calls.append(path) or original(path))
        again, again_stats = predictor.predict_speaker(paths)
    assert again == results and len(calls) == len(paths)
    np.testing.assert_array_equal(again_stats.mean, stats.mean)
    # a file given twice counts twice, in the statistics and in the results
    twice = [*paths, paths[0]]
    expected = predictor.predict_files(twice, speaker=predictor.speaker_statistics(twice))
    assert predictor.predict_speaker(twice)[0] == expected and len(expected) == len(twice)
    # without the speaker's statistics the training statistics stand in, and a note says so
    status, _, err = _cli(capsys, checkpoint, paths[0])
    assert status == 0 and "note:" in err and "--same-speaker" in err


def test_features_and_model_have_the_documented_shapes(predictor, audio):
    n_mfcc, frames = predictor.feature_config.shape
    x = predictor.features(audio["short"])
    assert x.shape == (n_mfcc, frames) and x.dtype == np.float32
    assert not predictor.model.training
    logits = predictor.model(torch.as_tensor(np.stack([x, x, x])))
    assert logits.shape == (3, len(predictor.class_names))
    probabilities = torch.softmax(logits[0], 0).detach().numpy()
    expected = predictor.predict_file(audio["short"])["probabilities"]
    assert probabilities == pytest.approx(list(expected.values()), abs=1e-6)


def test_windows_average_consecutive_windows_of_a_long_recording(
    checkpoint, predictor, audio, capsys
):
    seconds = sf.info(audio["long"]).duration
    assert seconds > 2 * predictor.feature_config.max_seconds
    x, weights = predictor.window_features(audio["long"])
    assert len(x) == int(np.ceil(seconds / predictor.feature_config.max_seconds))
    assert weights.sum() == pytest.approx(seconds, abs=1e-3)
    # the first window is exactly what the default (paper) scoring sees
    assert np.array_equal(x[0], predictor.features(audio["long"]))
    with torch.no_grad():
        p = torch.softmax(predictor.model(torch.as_tensor(x)), 1).numpy()
    expected = (p * weights[:, None]).sum(0) / weights.sum()
    windowed = predictor.predict_file(audio["long"], windows=True)
    assert list(windowed["probabilities"].values()) == pytest.approx(expected, abs=1e-6)
    assert windowed["probabilities"] != predictor.predict_file(audio["long"])["probabilities"]
    # a recording shorter than max_seconds is one window: --windows changes nothing
    short = predictor.predict_file(audio["short"])
    assert predictor.predict_file(audio["short"], windows=True) == short
    status, out, _ = _cli(capsys, checkpoint, audio["long"], "--windows", "--format", "jsonl")
    assert status == 0
    assert json.loads(out)["probabilities"] == pytest.approx(windowed["probabilities"], abs=1e-6)


def test_unreadable_files_are_listed_and_skipped_and_the_rest_predicted(
    checkpoint, predictor, audio, tmp_path, capsys
):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.wav").write_bytes(audio["short"].read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF not really a wav")
    (folder / "empty.flac").write_bytes(b"")
    sf.write(folder / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (folder / "notes.txt").write_text("not audio, not looked at")
    missing = tmp_path / "missing.wav"
    status, out, err = _cli(capsys, checkpoint, folder, missing, "--format", "csv")
    assert status == 1
    rows = list(csv.DictReader(out.splitlines()))
    assert [row["path"] for row in rows] == [str(folder / "good.wav")]
    assert rows[0]["label"] == predictor.predict_file(folder / "good.wav")["label"]
    skipped = [line for line in err.splitlines() if line.startswith("emodarts: skipped ")]
    named = {
        name: [line for line in skipped if name in line]
        for name in ("broken.wav", "empty.flac", "silent.wav", "missing.wav")
    }
    assert all(len(lines) == 1 for lines in named.values()), err
    assert "notes.txt" not in err
    assert "predicted 1 of 5 files; 4 skipped" in err
    with pytest.raises(DataError, match="broken.wav"):
        predictor.predict_files([folder / "good.wav", folder / "broken.wav"])


def test_same_speaker_with_no_readable_recording_is_one_line_naming_it(
    checkpoint, tmp_path, capsys
):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    status, out, err = _cli(capsys, checkpoint, broken, "--same-speaker")
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "broken.wav" in err


def test_folders_are_searched_recursively(checkpoint, audio, capsys):
    status, out, _ = _cli(capsys, checkpoint, audio["short"].parent)
    assert status == 0
    table = out.splitlines()
    assert table[0].split()[:2] == ["path", "label"]
    assert [line.split()[0] for line in table[1:]] == sorted(str(p) for p in audio.values())


@pytest.mark.parametrize(
    ("make", "culprit"),
    [
        (lambda tmp: tmp.joinpath("junk.pt").write_bytes(b"junk") and tmp / "junk.pt", "junk.pt"),
        (lambda tmp: tmp / "absent.pt", "absent.pt"),
    ],
)
def test_a_bad_checkpoint_is_one_line_and_exit_2(make, culprit, audio, tmp_path, capsys):
    status, out, err = _cli(capsys, make(tmp_path), audio["short"])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and culprit in err and "Traceback" not in err


def test_a_folder_without_audio_is_one_line_and_exit_2(checkpoint, tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("no audio here")
    status, _, err = _cli(capsys, checkpoint, tmp_path)
    assert status == 2 and len(err.strip().splitlines()) == 1 and str(tmp_path) in err


def test_predictor_is_a_lazy_public_name():
    from emodarts_nni.inference import predict

    assert "Predictor" in emodarts_nni.__all__
    assert emodarts_nni.Predictor is predict.Predictor


def test_per_speaker_normalisation_falls_back_to_the_saved_training_statistics(
    checkpoint, predictor, audio, tmp_path
):
    """Without the speaker's statistics a per-speaker model is fed the training statistics
    saved with it (as a model trained with them is), and a note says so."""
    payload = torch.load(checkpoint, weights_only=True)
    payload["features"]["normalisation"] = "train"
    train_mode = tmp_path / "train_mode.pt"
    torch.save(payload, train_mode)
    plain = Predictor.from_checkpoint(train_mode)
    assert plain.note is None and plain.normalisation_mode == "train"
    assert "speaker" in predictor.note and "training statistics" in predictor.note
    assert np.array_equal(plain.features(audio["short"]), predictor.features(audio["short"]))


def _held_out_speaker(checkpoint: Path) -> list[str]:
    """The audio files of one held-out speaker of the quickstart run (16 at test size)."""
    with (checkpoint.parent / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return [row["path"] for row in rows if row["speaker"] == rows[0]["speaker"]]


def test_same_speaker_below_the_minimum_warns_and_uses_the_training_statistics(
    checkpoint, predictor, capsys
):
    """Fewer recordings than MIN_SPEAKER_RECORDINGS: their own statistics would cost
    accuracy (benchmarks/same_speaker_minimum.py), so one warning line names the count and
    the minimum and the training statistics give exactly the answer without --same-speaker;
    at the minimum the recordings' own statistics are used, silently."""
    paths = _held_out_speaker(checkpoint)
    assert len(paths) > MIN_SPEAKER_RECORDINGS > 1
    few, enough = paths[: MIN_SPEAKER_RECORDINGS - 1], paths[:MIN_SPEAKER_RECORDINGS]
    training = predictor.predict_files(few)  # the training statistics saved with the model
    own = predictor.predict_files(few, speaker=predictor.speaker_statistics(few, min_recordings=1))
    assert own != training  # the two statistics tell apart on these files

    # Python: a FewRecordingsWarning, and the training statistics
    match = rf"{len(few)} readable recordings .* minimum of {MIN_SPEAKER_RECORDINGS}"
    with pytest.warns(FewRecordingsWarning, match=match):
        results, stats = predictor.predict_speaker(few)
    assert results == training and stats is predictor.normalisation
    with pytest.warns(FewRecordingsWarning, match=match):
        assert predictor.speaker_statistics(few) is predictor.normalisation

    # CLI: one warning line, exit 0, the probabilities of a run without --same-speaker
    status, out, err = _cli(capsys, checkpoint, *few, "--same-speaker", "--format", "jsonl")
    assert status == 0
    assert err.count("\n") == 1 and err.startswith("emodarts: warning: --same-speaker: ")
    assert f"{len(few)} readable recordings" in err
    assert f"minimum of {MIN_SPEAKER_RECORDINGS}" in err and "training statistics" in err
    assert [json.loads(line) for line in out.splitlines()] == training
    status, plain, _ = _cli(capsys, checkpoint, *few, "--format", "jsonl")
    assert status == 0 and plain == out

    # at the minimum: the recordings' own statistics, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewRecordingsWarning)
        results, stats = predictor.predict_speaker(enough)
        expected = predictor.predict_files(enough, speaker=predictor.speaker_statistics(enough))
    assert results == expected and results != predictor.predict_files(enough)
    assert stats is not predictor.normalisation
    status, out, err = _cli(capsys, checkpoint, *enough, "--same-speaker", "--format", "jsonl")
    assert status == 0 and "warning" not in err and "note:" not in err
    assert [json.loads(line) for line in out.splitlines()] == results


def test_same_speaker_below_the_minimum_without_training_statistics_keeps_their_own(
    checkpoint, predictor, tmp_path, capsys
):
    """A checkpoint with no training statistics has nothing to fall back on: the few
    recordings' own statistics are used as before, and the warning says so."""
    payload = torch.load(checkpoint, weights_only=True)
    payload["normalisation"] = None
    bare = tmp_path / "no_statistics.pt"
    torch.save(payload, bare)
    plain = Predictor.from_checkpoint(bare)
    assert plain.normalisation is None
    few = _held_out_speaker(checkpoint)[: MIN_SPEAKER_RECORDINGS - 1]
    own = plain.predict_files(few, speaker=predictor.speaker_statistics(few, min_recordings=1))
    with pytest.warns(FewRecordingsWarning, match="no training statistics"):
        results, _ = plain.predict_speaker(few)
    assert results == own
    status, out, err = _cli(capsys, bare, *few, "--same-speaker", "--format", "jsonl")
    assert status == 0 and err.count("\n") == 1 and "no training statistics" in err
    assert [json.loads(line) for line in out.splitlines()] == own
