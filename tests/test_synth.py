"""The embedded corpus: deterministic, balanced, laid out as documented, speech-like in
the ways emotion is carried, written atomically and reused from the cache."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emodarts_nni.common.errors import DataError
from emodarts_nni.data import synth
from emodarts_nni.data.cache import cache_root
from emodarts_nni.data.manifest import PAPER_CLASSES, read_manifest
from emodarts_nni.data.synth import (
    EMOTIONS,
    default_corpus,
    speaker_voices,
    synthesize_corpus,
    synthesize_utterance,
)

SMALL = dict(n_speakers=4, n_sessions=2, utterances_per_class_per_speaker=2)


def wav_hashes(manifest: Path) -> dict[str, str]:
    root = manifest.parent
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "wav").rglob("*.wav"))
    }


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return synthesize_corpus(out, seed=0, workers=1, progress=False, **SMALL)


def test_same_seed_gives_byte_identical_files_whatever_the_workers(small_corpus, tmp_path):
    again = synthesize_corpus(tmp_path / "again", seed=0, workers=2, progress=False, **SMALL)
    assert wav_hashes(again) == wav_hashes(small_corpus)
    assert again.read_bytes() == small_corpus.read_bytes()  # the manifest too


def test_different_seed_gives_different_files(small_corpus, tmp_path):
    other = synthesize_corpus(tmp_path / "other", seed=1, workers=1, progress=False, **SMALL)
    ours, theirs = wav_hashes(small_corpus), wav_hashes(other)
    assert ours.keys() == theirs.keys()
    assert all(ours[name] != theirs[name] for name in ours)


def test_classes_speakers_and_sessions_are_balanced_as_documented(small_corpus):
    rows = read_manifest(small_corpus)
    assert len(rows) == 4 * 4 * 2
    assert {u.label for u in rows} == set(PAPER_CLASSES) == set(EMOTIONS)
    assert Counter((u.speaker, u.label) for u in rows) == {
        (s, c): 2 for s in ("s01F", "s02M", "s03F", "s04M") for c in EMOTIONS
    }
    sessions = {u.speaker: u.session for u in rows}
    assert sessions == {
        "s01F": "session1",
        "s02M": "session1",
        "s03F": "session2",
        "s04M": "session2",
    }
    assert all(re.fullmatch(r"s\d\d[FM]", u.speaker) for u in rows)


def test_manifest_paths_are_relative_and_files_are_16k_mono_pcm16(small_corpus):
    text = small_corpus.read_text()
    assert "wav/session1/s01F/s01F_neutral_001.wav" in text
    assert str(small_corpus.parent) not in text
    for u in read_manifest(small_corpus):
        info = sf.info(u.path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration == pytest.approx(u.duration, abs=1e-3)
        assert 1.0 <= u.duration <= 10.0


def test_default_size_durations_stay_between_1_and_10_seconds():
    # Many utterances of the slowest (sad, low-rate) and fastest speakers, without writing.
    voices = speaker_voices(0, 10, 5)
    slow = min(voices, key=lambda v: v.rate)
    fast = max(voices, key=lambda v: v.rate)
    lengths = [
        len(synthesize_utterance(voice, emotion, np.random.default_rng(i))) / 16000
        for i in range(12)
        for voice, emotion in ((slow, "sad"), (fast, "angry"))
    ]
    assert min(lengths) >= 1.0 and max(lengths) <= 10.0
    assert 2.0 <= float(np.median(lengths)) <= 5.5


def test_speakers_have_distinct_voices_of_both_sexes():
    voices = speaker_voices(0, 10, 5)
    assert [v.sex for v in voices] == ["F", "M"] * 5
    assert len({v.session for v in voices}) == 5
    assert all(
        {v.sex for v in voices if v.session == s} == {"F", "M"} for s in {v.session for v in voices}
    )
    female = [v.f0_hz for v in voices if v.sex == "F"]
    male = [v.f0_hz for v in voices if v.sex == "M"]
    assert min(female) > max(male)
    assert len({round(v.f0_hz) for v in voices}) == 10
    assert np.mean([v.formant_scale for v in voices if v.sex == "F"]) > np.mean(
        [v.formant_scale for v in voices if v.sex == "M"]
    )


def level_db(audio: np.ndarray) -> float:
    frames = audio[: len(audio) // 400 * 400].reshape(-1, 400)
    energy = np.sort((frames**2).mean(axis=1))[::-1]
    return float(10 * np.log10(energy[: max(1, len(energy) // 3)].mean()))  # loud third


def test_emotions_differ_in_energy_and_rate_as_speech_does():
    # The same generator seed gives the same sentence length in every class, so lengths
    # compare speaking rates.
    voices = speaker_voices(0, 10, 5)[:2]
    per_class = {
        e: [
            synthesize_utterance(voice, e, np.random.default_rng([7, i]))
            for voice in voices
            for i in range(6)
        ]
        for e in EMOTIONS
    }
    level = {e: np.mean([level_db(a) for a in clips]) for e, clips in per_class.items()}
    length = {e: np.mean([len(a) for a in clips]) for e, clips in per_class.items()}
    assert level["angry"] > level["happy"] > level["neutral"] > level["sad"]
    assert level["angry"] - level["sad"] > 8.0
    assert length["sad"] > 1.15 * max(length["neutral"], length["happy"], length["angry"])


def test_emotion_cues_overlap_between_utterances():
    # Intensity and noise vary per utterance: some happy clips are quieter than some neutral.
    voice = speaker_voices(0, 10, 5)[1]
    happy = [
        level_db(synthesize_utterance(voice, "happy", np.random.default_rng(i))) for i in range(12)
    ]
    neutral = [
        level_db(synthesize_utterance(voice, "neutral", np.random.default_rng(100 + i)))
        for i in range(12)
    ]
    assert min(happy) < max(neutral)


def test_existing_complete_corpus_is_reused_without_synthesis(small_corpus, monkeypatch):
    monkeypatch.setattr(synth, "_render", _fail)
    assert synthesize_corpus(small_corpus.parent, seed=0, progress=False, **SMALL) == small_corpus
    info = json.loads((small_corpus.parent / "corpus.json").read_text())
    assert info["params"]["seed"] == 0 and info["complete"] is True
    assert info["utterances"] == 32


def test_other_parameters_in_an_existing_corpus_are_refused(small_corpus):
    with pytest.raises(DataError, match="other parameters"):
        synthesize_corpus(small_corpus.parent, seed=5, progress=False, **SMALL)


def test_non_corpus_folder_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        synthesize_corpus(tmp_path / "mine", progress=False, **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []
    real = synth._render

    def interrupt_third(job, root):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job, root)

    monkeypatch.setattr(synth, "_render", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        synthesize_corpus(tmp_path / "corpus", workers=1, progress=False, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_default_corpus_is_generated_once_in_the_cache(tmp_path, monkeypatch):
    params = dict(seed=3, n_speakers=2, n_sessions=1, utterances_per_class_per_speaker=1)
    manifest = default_corpus(tmp_path, workers=1, progress=False, **params)
    assert manifest.parent.parent == tmp_path / "corpora"
    assert re.fullmatch(r"synth-v1-[0-9a-f]{10}", manifest.parent.name)
    assert len(read_manifest(manifest)) == 8
    monkeypatch.setattr(synth, "_render", _fail)
    assert default_corpus(tmp_path, progress=False, **params) == manifest
    other = synth.corpus_key(**{**params, "seed": 4})
    assert other != manifest.parent.name


def test_cache_root_resolution(tmp_path, monkeypatch):
    assert cache_root(tmp_path / "c") == tmp_path / "c"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "emodarts-nni"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "emodarts-nni"


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_speakers=5, n_sessions=2), "multiple of n_sessions"),
        (dict(utterances_per_class_per_speaker=0), "at least 1"),
        (dict(sample_rate=4000), "at least 8000"),
        (dict(seed=1.5), "integer"),
    ],
)
def test_invalid_parameters_are_data_errors(tmp_path, params, message):
    with pytest.raises(DataError, match=message):
        synthesize_corpus(tmp_path / "x", progress=False, **params)
    with pytest.raises(DataError):
        default_corpus(tmp_path, progress=False, unknown=1)


def _fail(*args, **kwargs):
    raise AssertionError("synthesised although the corpus was complete")
