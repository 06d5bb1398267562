"""Corpus readers: release layout in, utterances and counted skips out."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from fakecorpora import (
    make_crema_d,
    make_csv_corpus,
    make_emodb,
    make_iemocap,
    make_msp_improv,
    make_msp_podcast,
    make_ravdess,
    make_tess,
    write_corrupt,
    write_empty_wav,
    write_wav,
)

from emodarts_nni.common.errors import DataError
from emodarts_nni.data.corpora import CORPUS_READERS, build_manifest, reader_options
from emodarts_nni.data.corpora.common import (
    AUDIO_WITHOUT_LABEL,
    EMPTY_AUDIO,
    LABEL_WITHOUT_AUDIO,
    UNREADABLE_AUDIO,
    ReadResult,
    probe_duration,
)
from emodarts_nni.data.manifest import read_manifest, write_manifest


def labels_of(result: ReadResult) -> dict[str, str]:
    """File stem → label."""
    return {Path(u.path).stem: u.label for u in result.utterances}


def stems(result: ReadResult) -> list[str]:
    return [Path(u.path).stem for u in result.utterances]


# ------------------------------------------------------------------------- shared


def test_registry_names_every_kind():
    assert set(CORPUS_READERS) == {
        "iemocap",
        "msp_improv",
        "msp_podcast",
        "ravdess",
        "crema_d",
        "emodb",
        "tess",
        "csv",
    }


def test_unknown_kind_lists_the_valid_ones(tmp_path):
    with pytest.raises(DataError, match=r"'iemocapp'.*did you mean 'iemocap'.*msp_podcast"):
        build_manifest("iemocapp", tmp_path)


def test_unknown_option_is_named(tmp_path):
    with pytest.raises(DataError, match=r"unknown option 'improvised'.*improvised_only"):
        build_manifest("iemocap", tmp_path, improvised=False)


def test_option_of_the_wrong_type_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"improvised_only.*true or false.*'yes'"):
        build_manifest("iemocap", tmp_path, improvised_only="yes")


def test_reader_options_lists_defaults():
    assert reader_options("iemocap") == {"improvised_only": True, "merge_excited": False}
    assert reader_options("emodb") == {}


@pytest.mark.parametrize("kind", sorted(CORPUS_READERS))
def test_missing_root_names_the_path(tmp_path, kind):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere"):
        build_manifest(kind, missing)


def test_probe_reads_the_header_and_reports_bad_files(tmp_path):
    duration, problem = probe_duration(write_wav(tmp_path / "ok.wav", seconds=0.25))
    assert problem is None and duration == pytest.approx(0.25)
    assert probe_duration(write_corrupt(tmp_path / "bad.wav")) == (0.0, UNREADABLE_AUDIO)
    assert probe_duration(write_empty_wav(tmp_path / "empty.wav")) == (0.0, EMPTY_AUDIO)
    (tmp_path / "zero_bytes.wav").write_bytes(b"")
    assert probe_duration(tmp_path / "zero_bytes.wav") == (0.0, UNREADABLE_AUDIO)
    assert probe_duration(tmp_path / "absent.wav") == (0.0, UNREADABLE_AUDIO)


def test_result_keeps_a_few_examples_per_reason():
    result = ReadResult()
    for n in range(10):
        result.skip("odd", f"file{n}")
    assert result.skipped["odd"] == 10
    assert result.examples["odd"] == ["file0", "file1", "file2"]


# ------------------------------------------------------------------------- IEMOCAP


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    return make_iemocap(tmp_path_factory.mktemp("iemocap"))


def test_iemocap_default_is_improvised_four_classes(iemocap_root):
    result = build_manifest("iemocap", iemocap_root)
    assert labels_of(result) == {
        "Ses01F_impro01_F000": "neutral",
        "Ses01F_impro01_F001": "happy",
        "Ses01F_impro01_M000": "angry",
        "Ses01F_impro01_M001": "sad",
        "Ses02M_impro02_F000": "angry",
        "Ses02M_impro02_M000": "happy",
        "Ses02M_impro02_M001": "neutral",
        "Ses02M_impro02_F001": "sad",
    }
    assert stems(result) == sorted(stems(result)), "visited in sorted id order"
    assert result.skipped == Counter(
        {
            "scripted dialog (improvised_only=True)": 2,
            "label not in class set: exc (excited)": 1,
            "label not in class set: fru (frustrated)": 1,
            "no agreement among raters: xxx": 1,
            "unknown label code: zzz": 1,
            LABEL_WITHOUT_AUDIO: 1,
            AUDIO_WITHOUT_LABEL: 1,
            UNREADABLE_AUDIO: 1,
            EMPTY_AUDIO: 1,
        }
    )
    assert result.examples[LABEL_WITHOUT_AUDIO] == ["Ses01F_impro01_F004"]
    assert result.examples[AUDIO_WITHOUT_LABEL][0].endswith("Ses01F_impro01_F005.wav")
    assert result.examples[UNREADABLE_AUDIO][0].endswith("Ses01F_impro01_M004.wav")


def test_iemocap_speaker_comes_from_the_utterance_suffix(iemocap_root):
    result = build_manifest("iemocap", iemocap_root)
    by_stem = {Path(u.path).stem: u for u in result.utterances}
    # The dialog prefix Ses01F names the dialog; the M in _M000 names the speaker.
    assert by_stem["Ses01F_impro01_M000"].speaker == "Ses01M"
    assert by_stem["Ses01F_impro01_F000"].speaker == "Ses01F"
    assert by_stem["Ses02M_impro02_F000"].speaker == "Ses02F"
    assert {u.session for u in result.utterances} == {"Session1", "Session2"}
    assert all(u.duration == pytest.approx(0.2) for u in result.utterances)


def test_iemocap_merge_excited_is_an_option_and_visible(iemocap_root):
    plain = build_manifest("iemocap", iemocap_root)
    merged = build_manifest("iemocap", iemocap_root, merge_excited=True)
    assert labels_of(merged)["Ses01F_impro01_M002"] == "happy"
    assert len(merged.utterances) == len(plain.utterances) + 1
    assert "merge_excited=True" in merged.summary()
    assert "merge_excited=False" in plain.summary()


def test_iemocap_all_classes_and_scripted(iemocap_root):
    everything = build_manifest("iemocap", iemocap_root, all_classes=True, improvised_only=False)
    labels = labels_of(everything)
    assert labels["Ses01F_impro01_M002"] == "excited"
    assert labels["Ses01F_impro01_M003"] == "frustrated"
    assert labels["Ses01F_script01_1_F000"] == "angry"
    assert len(everything.utterances) == 12
    assert everything.skipped["no agreement among raters: xxx"] == 1


def test_iemocap_without_header_line_reads_the_same(tmp_path, iemocap_root):
    plain = build_manifest("iemocap", make_iemocap(tmp_path, header=False))
    assert stems(plain) == stems(build_manifest("iemocap", iemocap_root))
    assert "malformed label line" not in plain.skipped


def test_iemocap_accepts_the_folder_above_the_release(iemocap_root):
    result = build_manifest("iemocap", iemocap_root.parent)
    assert len(result.utterances) == 8


def test_iemocap_duplicate_ids_keep_the_sorted_first(tmp_path):
    root = make_iemocap(tmp_path)
    label_dir = root / "Session2" / "dialog" / "EmoEvaluation"
    # "Ses02M_impro02.txt" sorts before "Ses02M_impro02_copy.txt": its label (ang) wins.
    (label_dir / "Ses02M_impro02_copy.txt").write_text(
        "[1.0 - 2.0]\tSes02M_impro02_F000\tsad\t[1, 1, 1]\n"
    )
    result = build_manifest("iemocap", root)
    assert labels_of(result)["Ses02M_impro02_F000"] == "angry"
    assert result.skipped["duplicate label for the same utterance"] == 1


def test_iemocap_does_not_depend_on_file_system_order(tmp_path, monkeypatch):
    root = make_iemocap(tmp_path)
    (root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_impro02_copy.txt").write_text(
        "[1.0 - 2.0]\tSes02M_impro02_F000\tsad\t[1, 1, 1]\n"
    )
    forward = build_manifest("iemocap", root)
    real_glob, real_iterdir = Path.glob, Path.iterdir
    monkeypatch.setattr(Path, "glob", lambda self, p: reversed(sorted(real_glob(self, p))))
    monkeypatch.setattr(Path, "iterdir", lambda self: reversed(sorted(real_iterdir(self))))
    backward = build_manifest("iemocap", root)
    assert backward.utterances == forward.utterances
    assert backward.skipped == forward.skipped


def test_iemocap_missing_label_folder_is_an_error(tmp_path):
    root = make_iemocap(tmp_path)
    shutil.rmtree(root / "Session2" / "dialog")
    with pytest.raises(DataError, match=r"Session2/dialog/EmoEvaluation"):
        build_manifest("iemocap", root)


def test_iemocap_root_without_sessions_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no Session1..Session5"):
        build_manifest("iemocap", tmp_path)


# ---------------------------------------------------------------------- MSP-IMPROV


@pytest.mark.parametrize(
    ("label_name", "audio_subdir"),
    [("Evaluation.txt", False), ("Evalution.txt", True)],
)
def test_msp_improv_consensus(tmp_path, label_name, audio_subdir):
    root = make_msp_improv(tmp_path, label_name=label_name, audio_subdir=audio_subdir)
    result = build_manifest("msp_improv", root)
    assert labels_of(result) == {
        "MSP-IMPROV-S01A-F01-P-FM01": "angry",
        "MSP-IMPROV-S01H-M01-R-MF01": "happy",
        "MSP-IMPROV-S02S-F01-S-FM02": "neutral",
        "MSP-IMPROV-S03H-M02-P-MF01": "happy",
        "MSP-IMPROV-S04S-F02-R-FM01": "sad",
    }
    assert {(u.speaker, u.session) for u in result.utterances} == {
        ("F01", "session1"),
        ("M01", "session1"),
        ("M02", "session2"),
        ("F02", "session2"),
    }
    assert result.skipped == Counter(
        {
            "label not in class set: O (other)": 1,
            "no agreement among raters: X": 1,
            "unknown label code: Q": 1,
            LABEL_WITHOUT_AUDIO: 1,
            AUDIO_WITHOUT_LABEL: 1,
        }
    )
    assert result.examples[LABEL_WITHOUT_AUDIO] == ["MSP-IMPROV-S05A-F02-P-FM09"]


def test_msp_improv_filename_labels_need_no_label_file(tmp_path):
    root = make_msp_improv(tmp_path)
    (root / "Evaluation.txt").unlink()
    result = build_manifest("msp_improv", root, label_source="filename")
    labels = labels_of(result)
    assert len(labels) == 9
    assert labels["MSP-IMPROV-S02S-F01-S-FM02"] == "sad"  # intended, not perceived
    assert not result.skipped


def test_msp_improv_conditions_filter(tmp_path):
    root = make_msp_improv(tmp_path)
    result = build_manifest("msp_improv", root, conditions=("P",))
    assert sorted(labels_of(result)) == [
        "MSP-IMPROV-S01A-F01-P-FM01",
        "MSP-IMPROV-S03H-M02-P-MF01",
    ]
    assert result.skipped["condition R not selected (conditions=P)"] == 2
    assert build_manifest("msp_improv", root, conditions="P,S").options["conditions"] == "P,S"
    with pytest.raises(DataError, match="conditions"):
        build_manifest("msp_improv", root, conditions=("Z",))


def test_msp_improv_missing_label_file_names_both_spellings(tmp_path):
    root = make_msp_improv(tmp_path)
    (root / "Evaluation.txt").unlink()
    with pytest.raises(DataError, match=r"Evaluation\.txt.*Evalution\.txt"):
        build_manifest("msp_improv", root)


def test_msp_improv_bad_label_source(tmp_path):
    root = make_msp_improv(tmp_path)
    with pytest.raises(DataError, match="label_source"):
        build_manifest("msp_improv", root, label_source="votes")


# --------------------------------------------------------------------- MSP-Podcast


@pytest.mark.parametrize(
    ("label_name", "audio_dir"),
    [("labels_consensus.csv", "Audios"), ("labels_concensus.csv", "Audio")],
)
def test_msp_podcast(tmp_path, label_name, audio_dir):
    root = make_msp_podcast(tmp_path, label_name=label_name, audio_dir=audio_dir)
    result = build_manifest("msp_podcast", root)
    by_stem = {Path(u.path).stem: u for u in result.utterances}
    assert sorted(by_stem) == [
        "MSP-PODCAST_0001_0001",
        "MSP-PODCAST_0001_0002",
        "MSP-PODCAST_0002_0001",
        "MSP-PODCAST_0002_0002",
        "MSP-PODCAST_0003_0001",
    ]
    assert by_stem["MSP-PODCAST_0003_0001"].speaker == "unknown-MSP-PODCAST_0003_0001"
    assert by_stem["MSP-PODCAST_0001_0001"].speaker == "1"
    assert by_stem["MSP-PODCAST_0002_0001"].split == "Development"  # was Validation
    assert by_stem["MSP-PODCAST_0002_0002"].split == "Test1"
    assert {u.session for u in result.utterances} == {""}
    assert result.skipped == Counter(
        {
            "label not in class set: U (surprise)": 1,
            "no agreement among raters: X": 1,
            LABEL_WITHOUT_AUDIO: 1,
            AUDIO_WITHOUT_LABEL: 1,
            UNREADABLE_AUDIO: 1,
        }
    )
    assert "Unknown" in result.summary()


def test_msp_podcast_drop_unknown_speakers(tmp_path):
    root = make_msp_podcast(tmp_path)
    result = build_manifest("msp_podcast", root, drop_unknown_speakers=True)
    assert len(result.utterances) == 4
    assert result.skipped["unknown speaker (drop_unknown_speakers=True)"] == 1


def test_msp_podcast_missing_labels_and_columns(tmp_path):
    root = make_msp_podcast(tmp_path)
    label_file = root / "Labels" / "labels_consensus.csv"
    label_file.write_text("FileName,EmoClass\nMSP-PODCAST_0001_0001.wav,A\n")
    with pytest.raises(DataError, match=r"labels_consensus\.csv.*SpkrID, Split_Set"):
        build_manifest("msp_podcast", root)
    label_file.unlink()
    with pytest.raises(DataError, match=r"labels_consensus\.csv.*labels_concensus\.csv"):
        build_manifest("msp_podcast", root)


def test_msp_podcast_round_trips_through_the_manifest(tmp_path):
    result = build_manifest("msp_podcast", make_msp_podcast(tmp_path))
    path = write_manifest(result.utterances, tmp_path / "manifest.csv")
    assert read_manifest(path) == result.utterances


# ---------------------------------------------------------------- file-name corpora


def test_ravdess(tmp_path):
    root = make_ravdess(tmp_path)
    result = build_manifest("ravdess", root)
    assert labels_of(result) == {
        "03-01-01-01-01-01-01": "neutral",
        "03-01-05-02-01-01-01": "angry",
        "03-01-03-01-01-01-02": "happy",
        "03-01-04-01-01-01-02": "sad",
    }
    assert {(u.speaker, u.session) for u in result.utterances} == {
        ("Actor_01", "Actor_01"),
        ("Actor_02", "Actor_02"),
    }
    assert result.skipped == Counter(
        {
            "label not in class set: 02 (calm)": 1,
            "song (include_song=False)": 1,
            "unknown label code: 09": 1,
            "file name does not follow the corpus convention": 1,
            EMPTY_AUDIO: 1,
        }
    )
    everything = build_manifest("ravdess", root, all_classes=True, include_song=True)
    assert labels_of(everything)["03-01-02-01-01-01-01"] == "calm"
    assert labels_of(everything)["03-02-03-01-01-01-01"] == "happy"


def test_crema_d(tmp_path):
    result = build_manifest("crema_d", make_crema_d(tmp_path))
    assert labels_of(result) == {
        "1001_DFA_ANG_XX": "angry",
        "1001_IEO_HAP_LO": "happy",
        "1002_DFA_NEU_XX": "neutral",
        "1002_IEO_SAD_HI": "sad",
    }
    assert {u.speaker for u in result.utterances} == {"1001", "1002"}
    assert result.skipped == Counter(
        {
            "label not in class set: FEA (fear)": 1,
            "unknown label code: BOR": 1,
            EMPTY_AUDIO: 1,
        }
    )


def test_emodb(tmp_path):
    root = make_emodb(tmp_path)
    result = build_manifest("emodb", root)
    assert labels_of(result) == {
        "03a01Wa": "angry",
        "03a01Fa": "happy",
        "08a02Tb": "sad",
        "08a02Nc": "neutral",
    }
    assert {u.speaker for u in result.utterances} == {"03", "08"}
    assert result.skipped == Counter(
        {
            "label not in class set: L (boredom)": 1,
            "label not in class set: E (disgust)": 1,
            "unknown label code: X": 1,
            UNREADABLE_AUDIO: 1,
        }
    )
    everything = build_manifest("emodb", root / "wav", all_classes=True)
    assert labels_of(everything)["08a02La"] == "boredom"
    assert len(everything.utterances) == 6


def test_tess(tmp_path):
    result = build_manifest("tess", make_tess(tmp_path), all_classes=True)
    assert labels_of(result) == {
        "OAF_back_angry": "angry",
        "OAF_back_ps": "surprise",
        "OAF_dog_neutral": "neutral",
        "YAF_back_happy": "happy",
        "YAF_dog_sad": "sad",
    }
    assert {u.speaker for u in result.utterances} == {"OAF", "YAF"}
    assert result.skipped == Counter(
        {"unknown label code: bored": 1, "duplicate file name (first copy kept)": 1}
    )


def test_file_name_corpus_without_wavs_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no .wav files"):
        build_manifest("crema_d", tmp_path)


# ---------------------------------------------------------------------------- csv


def test_csv_corpus(tmp_path):
    csv_path = make_csv_corpus(tmp_path)
    result = build_manifest("csv", csv_path)
    by_stem = {Path(u.path).stem: u for u in result.utterances}
    assert {k: u.label for k, u in by_stem.items()} == {
        "a": "angry",
        "b": "neutral",
        "c": "sad",
        "e": "happy",
    }
    assert Path(by_stem["a"].path).is_absolute()
    assert by_stem["b"].duration == pytest.approx(0.3)  # from the header
    assert by_stem["c"].duration == pytest.approx(1.5)  # from the CSV
    assert (by_stem["c"].speaker, by_stem["c"].session) == ("s2", "day2")
    assert result.skipped == Counter(
        {"label not in class set: frustrated": 1, "audio file not found": 1}
    )


def test_csv_corpus_missing_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,emotion\na.wav,sad\n")
    with pytest.raises(DataError, match=r"bad\.csv.*label, speaker"):
        build_manifest("csv", bad)


def test_csv_corpus_bad_duration_names_the_line(tmp_path):
    write_wav(tmp_path / "a.wav")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label,speaker,duration\na.wav,sad,s1,long\n")
    with pytest.raises(DataError, match=r"bad\.csv:2.*'long'"):
        build_manifest("csv", bad)


def test_summary_lists_classes_speakers_sessions_and_skips(iemocap_root):
    text = build_manifest("iemocap", iemocap_root).summary()
    assert "8 utterances, 4 speakers, 2 sessions" in text
    assert "neutral" in text and "angry" in text
    assert "scripted dialog (improvised_only=True)" in text
    assert "Session1, Session2" in text


def test_a_label_with_an_invisible_character_is_shown_escaped(tmp_path):
    """A zero-width space inside 'angry' makes another label; the reading summary must show
    it, not print 'angry' and leave the user wondering why it was skipped."""
    csv_path = make_csv_corpus(tmp_path)
    text = csv_path.read_text().replace("audio/d.wav,frustrated", "audio/d.wav,an\u200bgry")
    csv_path.write_text(text)
    result = build_manifest("csv", csv_path)
    assert "label not in class set: 'an\\u200bgry'" in result.skipped
