"""The manifest reader under hostile input: labels are normalised and validated, and every
malformed file is refused with one line naming the file and line (never a traceback).
The last test fuzzes the reader with generated CSV bytes."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import DataError, EmodartsError
from emodarts_nni.data.manifest import (
    MANIFEST_COLUMNS,
    PAPER_CLASSES,
    class_names,
    read_manifest,
)

HEADER = ",".join(MANIFEST_COLUMNS)


def manifest(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def row(n: int, label: str = "angry", speaker: str = "s1") -> str:
    return f"a{n}.wav,{label},{speaker},sess1,1.0"


def refused(path: Path, *, all_classes: bool = True) -> str:
    options = {} if all_classes else {"all_classes": False}  # the default keeps any class
    with pytest.raises(DataError) as info:
        read_manifest(path, **options)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


# ------------------------------------------------------------------------------ labels
def test_labels_are_stripped_and_lower_cased_into_one_class(tmp_path):
    path = manifest(tmp_path, row(1, "angry"), row(2, "ANGRY "), row(3, "Angry"), row(4, "sad"))
    utterances = read_manifest(path)
    assert [u.label for u in utterances] == ["angry", "angry", "angry", "sad"]
    assert class_names(utterances) == ("sad", "angry")


def test_an_unknown_label_is_refused_when_only_the_paper_classes_are_used(tmp_path):
    path = manifest(tmp_path, row(1, "angry"), row(2, "bored"))
    message = refused(path, all_classes=False)
    assert f"{path}:3:" in message and "'bored'" in message and "all_classes" in message
    assert [u.label for u in read_manifest(path, all_classes=True)] == ["angry", "bored"]


def test_the_paper_classes_in_any_spelling_pass_the_class_check(tmp_path):
    rows = [row(i, f" {c.upper()} ") for i, c in enumerate(PAPER_CLASSES)]
    path = manifest(tmp_path, *rows)
    assert class_names(read_manifest(path, all_classes=False)) == PAPER_CLASSES


def test_a_run_on_a_manifest_refuses_an_unknown_label_unless_all_classes(tmp_path):
    from emodarts_nni.config.experiment import config_from_dict
    from emodarts_nni.pipeline.data import load_utterances

    path = manifest(tmp_path, row(1, "angry"), row(2, "bored"))
    data = {"corpus": {"kind": "manifest", "manifest": str(path)}}
    with pytest.raises(DataError, match="'bored'"):
        load_utterances(config_from_dict(data), progress=False)
    data["corpus"]["all_classes"] = True
    labels = {u.label for u in load_utterances(config_from_dict(data), progress=False)}
    assert labels == {"angry", "bored"}


# ------------------------------------------------------------------------ file format
def test_a_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + f"{HEADER}\n{row(1)}\n".encode())
    assert [u.label for u in read_manifest(path)] == ["angry"]


def test_latin_1_bytes_are_refused_with_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        f"{HEADER}\n{row(1)}\n".encode() + "caf\xe9.wav,sad,s1,x,1.0\n".encode("latin-1")
    )
    message = refused(path)
    assert f"{path}:3:" in message and "not UTF-8" in message and "0xe9" in message


def test_nul_bytes_are_refused_with_the_line(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(f"{HEADER}\n{row(1)}\na2.wav,sad\0,s1,x,1.0\n".encode())
    assert f"{path}:3: NUL byte" in refused(path)


def test_a_field_over_the_csv_limit_is_refused(tmp_path):
    path = manifest(tmp_path, row(1), "x" * 131_073 + ".wav,sad,s1,x,1.0")
    message = refused(path)
    assert "malformed CSV" in message and "131072" in message


def test_short_and_long_rows_are_refused(tmp_path):
    short = manifest(tmp_path, row(1), "a2.wav,sad,s2", name="short.csv")
    assert f"{short}:3: 3 field(s) but the header has 5" in refused(short)
    long = manifest(tmp_path, row(1), row(2) + ",extra", name="long.csv")
    assert f"{long}:3: 6 field(s) but the header has 5" in refused(long)


def test_a_repeated_header_column_is_refused(tmp_path):
    path = manifest(
        tmp_path, "a1.wav,angry,s1,s2,x,1.0", header=HEADER.replace("speaker", "speaker,speaker")
    )
    assert "speaker appear more than once" in refused(path)


def test_a_repeated_audio_file_is_refused(tmp_path):
    path = manifest(tmp_path, row(1), row(2), row(1, "sad"))
    message = refused(path)
    assert f"{path}:4:" in message and "first on line 2" in message


def test_a_symlink_loop_is_read_and_later_skipped_not_fatal(tmp_path):
    from emodarts_nni.data.features import UNREADABLE_AUDIO, FeatureConfig, extract_features

    os.symlink(tmp_path / "loop.wav", tmp_path / "loop.wav")
    path = manifest(tmp_path, "loop.wav,sad,s1,x,1.0")
    utterances = read_manifest(path)
    assert utterances[0].path == str(tmp_path / "loop.wav")
    small = FeatureConfig(
        n_mfcc=8, n_mels=16, n_fft=256, hop_length=500, max_seconds=1.0, frames=32, pooled_frames=8
    )
    result = extract_features(utterances, small, cache_dir=tmp_path / "c", progress=False)
    assert result.skipped == {UNREADABLE_AUDIO: 1}


@pytest.mark.parametrize("command", ["features", "splits"])
def test_commands_report_a_latin_1_manifest_in_one_line(tmp_path, capsys, command):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n".encode() + "caf\xe9.wav,sad,s1,x,1.0\n".encode("latin-1"))
    argv = (
        ["features", str(path), "--cache-dir", str(tmp_path / "c")]
        if command == "features"
        else ["corpus", "splits", str(path), "-o", str(tmp_path / "s.csv")]
    )
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{path}:2: not UTF-8" in err


# --------------------------------------------------------------------------------- fuzz
_CELL = st.one_of(
    st.sampled_from(
        [
            "",
            "a.wav",
            "angry",
            " Sad ",
            "bored",
            "1.5",
            "nan",
            "x",
            '"q"',
            "s1",
            '"a\nb.wav"',
            "\x00",
        ]
    ),
    st.text(max_size=12),
)
_ROWS = st.lists(st.lists(_CELL, min_size=0, max_size=7), max_size=6)


@st.composite
def manifest_bytes(draw: st.DrawFn) -> bytes:
    """CSV text near the real format (a header, mostly 5 fields, mutated cells), then
    encoded in a random way and optionally corrupted with raw bytes."""
    header = draw(
        st.one_of(
            st.just(list(MANIFEST_COLUMNS)),
            st.just([*MANIFEST_COLUMNS, "split"]),
            st.permutations(list(MANIFEST_COLUMNS)),
            st.lists(st.sampled_from([*MANIFEST_COLUMNS, "split", "extra", ""]), max_size=7),
        )
    )
    rows = draw(_ROWS)
    lines = [",".join(header)]
    for cells in rows:
        lines.append(",".join(cells))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])), errors="surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=6)) + data[at:]
    return data


@settings(
    max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=manifest_bytes(), all_classes=st.booleans())
@example(data=f'{HEADER}\n"a\nb.wav",sad,s,x,1\n"a\nb.wav",sad,s,x,1\n'.encode(), all_classes=True)
@example(data=f'{HEADER}\n"a\nb.wav",,s,x,1\n'.encode(), all_classes=True)
def test_fuzz_read_manifest_loads_or_fails_in_one_line(tmp_path, data, all_classes):
    """Budget: 200 generated manifests, each within a 1 s deadline. Every input either
    reads (normalised lower-case labels, no duplicate paths) or raises DataError with a
    one-line message naming the file; nothing else escapes."""
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        utterances = read_manifest(path, **({} if all_classes else {"all_classes": False}))
    except EmodartsError as exc:
        message = str(exc)
        assert isinstance(exc, DataError)
        assert message and "\n" not in message and "\r" not in message
        assert str(path) in message
        return
    for u in utterances:
        assert u.label == u.label.strip().lower() and u.label
        assert all_classes or u.label in PAPER_CLASSES
    assert len({u.path for u in utterances}) == len(utterances)
    # What was read writes back and reads again the same.
    from emodarts_nni.data.manifest import write_manifest

    again = read_manifest(write_manifest(utterances, tmp_path / "again.csv"), all_classes=True)
    assert [(u.label, u.speaker, u.session) for u in again] == [
        (u.label, u.speaker or "unknown", u.session) for u in utterances
    ]
