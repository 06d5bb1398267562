"""Speaker-independent folds: every protocol, no test speaker anywhere else, seeded."""

from __future__ import annotations

import csv
import random
from collections import Counter

import numpy as np
import pytest

from emodarts_nni.common.errors import DataError
from emodarts_nni.data.manifest import PAPER_CLASSES, Utterance
from emodarts_nni.data.splits import (
    PARTS,
    choose_protocol,
    make_folds,
    split_summary,
    write_splits,
)


def iemocap_like(sessions: int = 5, per_class: int = 6) -> list[Utterance]:
    """Two speakers (F, M) per session, four classes, ``per_class`` each."""
    return [
        Utterance(f"/c/Ses0{s}{g}/{label}_{n}.wav", label, f"Ses0{s}{g}", f"Session{s}", 1.0)
        for s in range(1, sessions + 1)
        for g in "FM"
        for label in PAPER_CLASSES
        for n in range(per_class)
    ]


def speakers_only(n_speakers: int, per_class: int = 5, session_is_speaker: bool = False):
    """Corpora without sessions (CREMA-D) or with one "session" per actor (RAVDESS)."""
    return [
        Utterance(
            f"/c/{spk:02d}/{label}_{n}.wav",
            label,
            f"{spk:02d}",
            f"Actor_{spk:02d}" if session_is_speaker else "",
            1.0,
        )
        for spk in range(n_speakers)
        for label in PAPER_CLASSES
        for n in range(per_class)
    ]


def podcast_like() -> list[Utterance]:
    """Official partitions with disjoint speakers, plus a Test2 set the protocol ignores."""
    rows = []
    plan = {"Train": range(0, 8), "Development": range(8, 10), "Test1": range(10, 13)}
    plan["Test2"] = range(13, 14)
    for split, speakers in plan.items():
        for spk in speakers:
            for label in PAPER_CLASSES:
                for n in range(3):
                    rows.append(
                        Utterance(f"/p/{spk}_{label}_{n}.wav", label, str(spk), "", 1.0, split)
                    )
    return rows


def speakers_of(utts, idx) -> set[str]:
    return {utts[int(i)].speaker for i in idx}


def paths_of(utts, idx) -> set[str]:
    return {utts[int(i)].path for i in idx}


def assert_speaker_independent(folds, utts) -> None:
    for fold in folds:
        test_speakers = speakers_of(utts, fold.test)
        assert test_speakers, f"fold {fold.fold} has no test speakers"
        for part in ("search", "train", "validation"):
            assert not test_speakers & speakers_of(utts, fold.part(part)), (fold.fold, part)
        rows = [set(fold.part(p).tolist()) for p in PARTS]
        assert sum(len(r) for r in rows) == len(set().union(*rows)), "parts overlap"


CASES = {
    "session": (iemocap_like, {}, 5),
    "speaker": (iemocap_like, {}, 10),
    "speaker_kfold": (iemocap_like, {}, 5),
    "speaker_kfold_3": (lambda: speakers_only(7), {"n_folds": 3}, 3),
    "auto": (iemocap_like, {}, 5),
    "official": (podcast_like, {}, 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_test_speaker_leaks_and_fold_counts(case):
    make, kwargs, n_folds = CASES[case]
    utts = make()
    protocol = case.split("_3")[0]
    folds = make_folds(utts, protocol=protocol, **kwargs)
    assert len(folds) == n_folds
    assert [f.fold for f in folds] == list(range(n_folds))
    assert_speaker_independent(folds, utts)
    if protocol != "official":  # every row is used; each is tested exactly once
        for fold in folds:
            assert sum(len(fold.part(p)) for p in PARTS) == len(utts)
        tested = Counter(i for f in folds for i in f.test.tolist())
        assert set(tested) == set(range(len(utts))) and set(tested.values()) == {1}


def test_session_protocol_holds_out_one_session():
    utts = iemocap_like()
    folds = make_folds(utts, protocol="session")
    assert [f.test_groups for f in folds] == [(f"Session{s}",) for s in range(1, 6)]
    for fold in folds:
        assert {utts[i].session for i in fold.test} == set(fold.test_groups)
        assert len(fold.test) == 2 * 4 * 6


def test_speaker_protocol_with_fewer_folds_groups_neighbours():
    folds = make_folds(iemocap_like(), protocol="speaker", n_folds=5)
    assert folds[0].test_groups == ("Ses01F", "Ses01M")


def test_speaker_kfold_balances_and_covers_every_speaker():
    utts = speakers_only(12)
    folds = make_folds(utts, protocol="speaker_kfold", seed=3)
    assert len(folds) == 5
    held = [g for f in folds for g in f.test_groups]
    assert sorted(held) == sorted({u.speaker for u in utts})
    assert {len(f.test) for f in folds} <= {40, 60}  # 12 speakers of 20 in 5 folds


def test_speaker_kfold_default_shrinks_to_the_number_of_speakers():
    assert len(make_folds(speakers_only(3), protocol="speaker_kfold")) == 3


def test_auto_choice():
    assert choose_protocol(iemocap_like()) == "session"
    assert choose_protocol(iemocap_like(sessions=2)) == "speaker_kfold"
    # RAVDESS: one actor per "session" is speaker k-fold, not 24 leave-one-out folds.
    assert choose_protocol(speakers_only(6, session_is_speaker=True)) == "speaker_kfold"
    assert choose_protocol(speakers_only(6)) == "speaker_kfold"
    assert make_folds(speakers_only(6, session_is_speaker=True))[0].protocol == "speaker_kfold"


def test_validation_is_speaker_disjoint_with_three_or_more_training_speakers():
    utts = iemocap_like()
    for fold in make_folds(utts, protocol="session"):
        val_speakers = speakers_of(utts, fold.validation)
        assert val_speakers
        assert not val_speakers & speakers_of(utts, np.concatenate([fold.search, fold.train]))
        assert set(PAPER_CLASSES) <= {utts[i].label for i in fold.validation}


def test_validation_falls_back_to_a_stratified_split_with_few_speakers():
    utts = speakers_only(2, per_class=10)  # TESS-like: 2 folds, one training speaker each
    folds = make_folds(utts, protocol="speaker_kfold")
    assert len(folds) == 2
    assert_speaker_independent(folds, utts)
    for fold in folds:
        labels = Counter(utts[i].label for i in fold.validation)
        assert sum(labels.values()) == 6  # 15 % of 40, apportioned over the classes
        assert set(labels) == set(PAPER_CLASSES) and set(labels.values()) <= {1, 2}
        assert speakers_of(utts, fold.validation) == speakers_of(utts, fold.search)


def test_tiny_classes_still_fill_both_search_and_train():
    # One utterance per class, one training speaker: every class is a singleton.
    utts = speakers_only(2, per_class=1)
    for fold in make_folds(utts, protocol="speaker_kfold", seed=2):
        assert (len(fold.validation), len(fold.search), len(fold.train)) == (1, 2, 1)
    # Classes of two: one on each side, whatever the fraction.
    utts = speakers_only(4, per_class=1)
    for fold in make_folds(utts, protocol="speaker", seed=2):
        assert len(fold.validation) == 4 and len(speakers_of(utts, fold.validation)) == 1
        assert len(fold.search) == len(fold.train) == 4


def test_search_and_train_are_stratified_by_label():
    utts = speakers_only(2, per_class=40)
    fold = make_folds(utts, protocol="speaker_kfold", validation_fraction=0.0)[0]
    assert len(fold.validation) == 0
    assert Counter(utts[i].label for i in fold.search) == Counter({c: 28 for c in PAPER_CLASSES})
    assert Counter(utts[i].label for i in fold.train) == Counter({c: 12 for c in PAPER_CLASSES})


def test_official_protocol_uses_the_split_column():
    utts = podcast_like()
    (fold,) = make_folds(utts, protocol="official")
    assert {utts[i].split for i in fold.test} == {"Test1"}
    assert {utts[i].split for i in fold.validation} == {"Development"}
    assert {utts[i].split for i in np.concatenate([fold.search, fold.train])} == {"Train"}
    assert fold.test_groups == ("Test1",)


def test_official_protocol_needs_the_split_column():
    with pytest.raises(DataError, match="split column"):
        make_folds(iemocap_like(), protocol="official")


def test_official_protocol_refuses_overlapping_speakers():
    utts = podcast_like()
    utts[0] = Utterance(utts[0].path, utts[0].label, "10", "", 1.0, "Train")  # a Test1 speaker
    with pytest.raises(DataError, match="not speaker-independent.*10"):
        make_folds(utts, protocol="official")


@pytest.mark.parametrize("protocol", ["session", "speaker", "speaker_kfold", "official"])
def test_independent_of_input_order(protocol):
    utts = podcast_like() if protocol == "official" else iemocap_like()
    shuffled = list(utts)
    random.Random(1).shuffle(shuffled)
    a = make_folds(utts, protocol=protocol, seed=5)
    b = make_folds(shuffled, protocol=protocol, seed=5)
    for fa, fb in zip(a, b, strict=True):
        assert fa.test_groups == fb.test_groups
        for part in PARTS:
            assert paths_of(utts, fa.part(part)) == paths_of(shuffled, fb.part(part))


def test_seed_changes_the_draw_but_repeats_exactly():
    utts = iemocap_like()
    a, again = (make_folds(utts, protocol="session", seed=0) for _ in range(2))
    b = make_folds(utts, protocol="session", seed=1)
    assert all(np.array_equal(x.search, y.search) for x, y in zip(a, again, strict=True))
    assert any(not np.array_equal(x.search, y.search) for x, y in zip(a, b, strict=True))


def test_fold_arrays_are_read_only():
    fold = make_folds(iemocap_like(), protocol="session")[0]
    with pytest.raises(ValueError):
        fold.test[0] = 0


@pytest.mark.parametrize(
    ("utts", "kwargs", "message"),
    [
        (iemocap_like(sessions=1), {"protocol": "session"}, "at least 2 sessions"),
        (speakers_only(4), {"protocol": "session"}, "session for every utterance"),
        (iemocap_like(), {"protocol": "session", "n_folds": 6}, "n_folds=6.*5 sessions"),
        (iemocap_like(), {"protocol": "speaker_kfold", "n_folds": 11}, "n_folds=11.*10 speakers"),
        (speakers_only(1), {"protocol": "speaker_kfold"}, "at least 2 speakers"),
        (iemocap_like(), {"protocol": "sessions"}, "did you mean 'session'"),
        (iemocap_like(), {"search_fraction": 1.0}, "search_fraction"),
        (iemocap_like(), {"seed": -1}, "seed must be a non-negative integer"),
        ([], {}, "no utterances"),
    ],
)
def test_errors(utts, kwargs, message):
    with pytest.raises(DataError, match=message):
        make_folds(utts, **kwargs)


def test_session_protocol_refuses_speakers_spanning_sessions():
    utts = iemocap_like()
    utts[0] = Utterance(utts[0].path, utts[0].label, "Ses02F", utts[0].session, 1.0)
    with pytest.raises(DataError, match="speaker 'Ses02F' appears in sessions Session1, Session2"):
        make_folds(utts, protocol="session")


def test_write_splits_and_summary(tmp_path):
    utts = iemocap_like(sessions=3, per_class=3)
    folds = make_folds(utts, protocol="session")
    path = write_splits(folds, utts, tmp_path / "out" / "splits.csv")
    assert sorted(p.name for p in path.parent.iterdir()) == ["splits.csv"]  # no temp file left
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["fold", "part", "path", "speaker", "session", "label"]
    assert len(rows) == 3 * len(utts)
    fold0 = {r["path"] for r in rows if r["fold"] == "0" and r["part"] == "test"}
    assert fold0 == paths_of(utts, folds[0].test)
    text = split_summary(folds[0], utts)
    assert "fold 0 (session): test = Session1" in text
    assert all(part in text for part in PARTS)
    test_line = next(line for line in text.splitlines() if line.strip().startswith("test"))
    assert test_line.split()[1:] == ["24", "2", "6", "6", "6", "6"]
