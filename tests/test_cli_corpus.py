"""``emodarts corpus manifest|synth|splits`` through the real entry point."""

from __future__ import annotations

import csv

import pytest
from fakecorpora import make_iemocap, make_msp_podcast

from emodarts_nni.cli.corpus import parse_option
from emodarts_nni.cli.main import main
from emodarts_nni.data.manifest import read_manifest


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    return make_iemocap(tmp_path_factory.mktemp("cli-iemocap"))


def test_parse_option_types():
    assert parse_option("improvised_only=false") == ("improvised_only", False)
    assert parse_option("merge-excited=TRUE") == ("merge_excited", True)
    assert parse_option("n=3") == ("n", 3)
    assert parse_option("x=0.5") == ("x", 0.5)
    assert parse_option("conditions=P,S") == ("conditions", ("P", "S"))
    assert parse_option("label_source=filename") == ("label_source", "filename")


def test_manifest_writes_and_prints_the_summary(tmp_path, iemocap_root, capsys):
    out = tmp_path / "m" / "iemocap.csv"
    assert main(["corpus", "manifest", "iemocap", str(iemocap_root), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 utterances, 4 speakers, 2 sessions" in printed
    assert "label without audio" in printed and "zero-length audio" in printed
    assert f"wrote {out}" in printed
    utterances = read_manifest(out)
    assert len(utterances) == 8
    assert {u.speaker for u in utterances} == {"Ses01F", "Ses01M", "Ses02F", "Ses02M"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["iemocap.csv"]


def test_manifest_options_and_all_classes(tmp_path, iemocap_root, capsys):
    out = tmp_path / "all.csv"
    argv = ["corpus", "manifest", "iemocap", str(iemocap_root), "-o", str(out), "--all-classes"]
    argv += ["--option", "improvised_only=false", "merge_excited=true"]
    assert main(argv) == 0
    assert "merge_excited=True" in capsys.readouterr().out
    labels = {u.label for u in read_manifest(out)}
    assert {"frustrated", "happy"} <= labels and "excited" not in labels
    assert len(read_manifest(out)) == 12


def test_manifest_keeps_the_official_split_column(tmp_path, capsys):
    root = make_msp_podcast(tmp_path)
    out = tmp_path / "podcast.csv"
    assert main(["corpus", "manifest", "msp_podcast", str(root), "-o", str(out)]) == 0
    assert {u.split for u in read_manifest(out)} == {"Train", "Development", "Test1"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["iemocapp", "ROOT"], "unknown corpus kind 'iemocapp'"),
        (["iemocap", "ROOT", "--option", "improvised=false"], "unknown option 'improvised'"),
        (["iemocap", "ROOT", "--option", "improvised_only"], "expected KEY=VALUE"),
        (["iemocap", "MISSING"], "IEMOCAP root not found"),
    ],
)
def test_manifest_user_errors_are_one_line(tmp_path, iemocap_root, capsys, argv, message):
    argv = [
        str(iemocap_root) if a == "ROOT" else str(tmp_path / a) if a == "MISSING" else a
        for a in argv
    ]
    assert main(["corpus", "manifest", *argv, "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emodarts: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_manifest_with_nothing_usable_writes_nothing(tmp_path, iemocap_root, capsys):
    out = tmp_path / "none.csv"
    argv = ["corpus", "manifest", "msp_improv", str(tmp_path), "-o", str(out)]
    (tmp_path / "session1").mkdir()
    (tmp_path / "Evaluation.txt").write_text("")
    assert main(argv) == 2
    assert "no usable utterances" in capsys.readouterr().err
    assert not out.exists()


def test_splits_command(tmp_path, iemocap_root, capsys):
    manifest = tmp_path / "iemocap.csv"
    main(["corpus", "manifest", "iemocap", str(iemocap_root), "-o", str(manifest)])
    capsys.readouterr()
    out = tmp_path / "splits.csv"
    argv = ["corpus", "splits", str(manifest), "--protocol", "speaker", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("fold ") == 4 and "(4 folds, protocol speaker)" in printed
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for fold in {r["fold"] for r in rows}:
        test = {r["speaker"] for r in rows if r["fold"] == fold and r["part"] == "test"}
        others = {r["speaker"] for r in rows if r["fold"] == fold and r["part"] != "test"}
        assert len(test) == 1 and not test & others


def test_splits_errors_are_one_line(tmp_path, iemocap_root, capsys):
    manifest = tmp_path / "iemocap.csv"
    main(["corpus", "manifest", "iemocap", str(iemocap_root), "-o", str(manifest)])
    argv = ["corpus", "splits", str(manifest), "--protocol", "session", "--folds", "3"]
    assert main([*argv, "-o", str(tmp_path / "s.csv")]) == 2
    assert "n_folds=3 but there are 2 sessions" in capsys.readouterr().err


def test_synth_then_splits(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = ["corpus", "synth", str(out), "--speakers", "4", "--per-class", "2"]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "32 utterances, 4 speakers, 2 sessions" in printed
    utterances = read_manifest(out / "manifest.csv")
    assert {u.label for u in utterances} == {"neutral", "happy", "sad", "angry"}
    assert all(u.duration > 0 for u in utterances)
    splits = tmp_path / "splits.csv"
    assert main(["corpus", "splits", str(out / "manifest.csv"), "-o", str(splits)]) == 0
    assert "(4 folds, protocol speaker_kfold)" in capsys.readouterr().out


def test_synth_rejects_a_bad_layout(tmp_path, capsys):
    argv = ["corpus", "synth", str(tmp_path / "s"), "--speakers", "4", "--sessions", "3"]
    assert main(argv) == 2
    assert "multiple of n_sessions" in capsys.readouterr().err


def test_absurd_max_seconds_is_refused_before_any_extraction(tmp_path, iemocap_root, capsys):
    """Reliability defect 3: `--max-seconds 1e12` asked for ~57 PiB per utterance."""
    manifest = tmp_path / "iemocap.csv"
    main(["corpus", "manifest", "iemocap", str(iemocap_root), "-o", str(manifest)])
    capsys.readouterr()
    cache = tmp_path / "cache"
    argv = ["features", str(manifest), "--max-seconds", "1e12", "--cache-dir", str(cache)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err
    assert "needs about" in err and "PiB to extract" in err
    assert not cache.exists()
