"""Reading audio: any rate and channel count in, float32 mono at the asked rate out;
every unusable file is a DataError that names it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emodarts_nni.common.errors import DataError
from emodarts_nni.data.audio import EmptyAudioError, load_audio


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_sample_rates_are_resampled(tmp_path, rate):
    path = tmp_path / f"tone{rate}.wav"
    sf.write(path, tone(1.5, rate), rate, subtype="PCM_16")
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 24000) <= 2
    assert abs(peak_frequency(audio, 16000) - 440.0) < 2.0
    assert 0.45 < np.abs(audio[1000:-1000]).max() < 0.55


def test_native_rate_is_returned_unchanged(tmp_path):
    path = tmp_path / "native.wav"
    signal = tone(0.5, 16000)
    sf.write(path, signal, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, 16000), signal)


def test_stereo_is_down_mixed_by_averaging(tmp_path):
    path = tmp_path / "stereo.wav"
    left = tone(0.5, 16000)
    right = np.full_like(left, 0.25)
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert audio.shape == left.shape
    np.testing.assert_allclose(audio, (left + right) / 2, atol=1e-7)


def test_pcm16_is_scaled_to_unit_range(tmp_path):
    path = tmp_path / "pcm.wav"
    sf.write(path, np.array([32767, -32768, 0], dtype=np.int16), 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path, 16000), [32767 / 32768, -1.0, 0.0])


def test_corrupt_file_names_the_path(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match="corrupt.wav"):
        load_audio(path, 16000)


def test_zero_byte_file_is_empty_audio(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="zero.wav"):
        load_audio(path, 16000)


def test_header_without_samples_is_empty_audio(tmp_path):
    path = tmp_path / "header_only.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(EmptyAudioError, match="header_only.wav"):
        load_audio(path, 16000)


def test_truncated_wav_names_the_path(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(0.5, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:30])  # the header itself is cut short
    with pytest.raises(DataError, match="cut.wav"):
        load_audio(cut, 16000)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav", 16000)


def test_empty_audio_is_a_data_error():
    assert issubclass(EmptyAudioError, DataError)
