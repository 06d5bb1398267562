"""Tiny fake corpus releases in their original layouts, for reader and CLI tests.

Each ``make_*`` builder writes short WAVs (0.2 s, 8 kHz, soundfile) and label files
under ``base`` and returns the release root. Every tree contains the awkward cases a
real copy has: a corrupt WAV, a header-only (zero-frame) WAV, labels without audio,
audio without labels, codes outside the class set and unknown codes. The expected
counts are spelled out in ``tests/test_corpora.py`` next to the assertions.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 8000
SECONDS = 0.2


def write_wav(path: Path, seconds: float = SECONDS, sample_rate: int = SAMPLE_RATE) -> Path:
    """A short noise WAV (16-bit PCM); deterministic content from the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    samples = (0.1 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32)
    soundfile.write(path, samples, sample_rate, subtype="PCM_16")
    return path


def write_corrupt(path: Path) -> Path:
    """Random bytes with a ``.wav`` name: the header cannot be read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(7).bytes(300))
    return path


def write_empty_wav(path: Path) -> Path:
    """A valid WAV header with zero frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    return path


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- IEMOCAP

#: (utterance id, code, audio kind) per dialog; audio kind: wav, corrupt, empty, none.
IEMOCAP_DIALOGS = {
    "Ses01F_impro01": [
        ("Ses01F_impro01_F000", "neu", "wav"),
        ("Ses01F_impro01_F001", "hap", "wav"),
        ("Ses01F_impro01_M000", "ang", "wav"),
        ("Ses01F_impro01_M001", "sad", "wav"),
        ("Ses01F_impro01_M002", "exc", "wav"),
        ("Ses01F_impro01_M003", "fru", "wav"),
        ("Ses01F_impro01_F002", "xxx", "wav"),
        ("Ses01F_impro01_F003", "zzz", "wav"),
        ("Ses01F_impro01_F004", "hap", "none"),
        ("Ses01F_impro01_M004", "neu", "corrupt"),
        ("Ses01F_impro01_M005", "sad", "empty"),
    ],
    "Ses01F_script01_1": [
        ("Ses01F_script01_1_F000", "ang", "wav"),
        ("Ses01F_script01_1_M000", "neu", "wav"),
    ],
    "Ses02M_impro02": [
        ("Ses02M_impro02_F000", "ang", "wav"),
        ("Ses02M_impro02_M000", "hap", "wav"),
        ("Ses02M_impro02_M001", "neu", "wav"),
        ("Ses02M_impro02_F001", "sad", "wav"),
    ],
}
#: Audio with no label line anywhere.
IEMOCAP_UNLABELLED = "Ses01F_impro01_F005"


def make_iemocap(base: Path, *, header: bool = True) -> Path:
    """``IEMOCAP_full_release`` with Session1 and Session2 (see :data:`IEMOCAP_DIALOGS`)."""
    root = base / "IEMOCAP_full_release"
    for dialog, rows in IEMOCAP_DIALOGS.items():
        session = root / f"Session{int(dialog[3:5])}"
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        if header:
            lines.append("[START_TIME - END_TIME]\tTURN_NAME\tEMOTION\t[V, A, D]")
        for n, (utt, code, audio) in enumerate(rows):
            lines.append(f"[{n * 5.0:.4f} - {n * 5.0 + 2.5:.4f}]\t{utt}\t{code}\t[2.5, 3.0, 3.5]")
            lines.append("C-E1:\tNeutral state;\t()")
            lines.append("A-E2:\tval 3; act 2; dom  3;\t()")
            lines.append("")
            wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
            {"wav": write_wav, "corrupt": write_corrupt, "empty": write_empty_wav}.get(
                audio, lambda p: p
            )(wav)
        _write_text(session / "dialog" / "EmoEvaluation" / f"{dialog}.txt", "\n".join(lines))
    session1 = root / "Session1"
    write_wav(session1 / "sentences" / "wav" / "Ses01F_impro01" / f"{IEMOCAP_UNLABELLED}.wav")
    # Clutter of a real copy that must be ignored: a macOS resource fork, sub-folders.
    _write_text(session1 / "dialog" / "EmoEvaluation" / "._Ses01F_impro01.txt", "\x00\x05junk")
    _write_text(
        session1 / "dialog" / "EmoEvaluation" / "Categorical" / "Ses01F_impro01_e1_cat.txt",
        "[1.0 - 2.0]\tSes01F_impro01_F000\tang\t[1, 1, 1]\n",
    )
    return root


# ------------------------------------------------------------------------ MSP-IMPROV

#: (audio stem, consensus letter or None for no label line, audio kind).
MSP_IMPROV_FILES = [
    ("MSP-IMPROV-S01A-F01-P-FM01", "A", "wav"),
    ("MSP-IMPROV-S01H-M01-R-MF01", "H", "wav"),
    ("MSP-IMPROV-S02S-F01-S-FM02", "N", "wav"),  # intended sad, perceived neutral
    ("MSP-IMPROV-S02N-M01-T-MF02", "O", "wav"),
    ("MSP-IMPROV-S03A-F02-P-FM01", "X", "wav"),
    ("MSP-IMPROV-S03H-M02-P-MF01", "H", "wav"),
    ("MSP-IMPROV-S04S-F02-R-FM01", "S", "wav"),
    ("MSP-IMPROV-S04N-M02-S-MF03", None, "wav"),  # audio without label
    ("MSP-IMPROV-S05N-M02-P-MF04", "Q", "wav"),  # unknown consensus code
    ("MSP-IMPROV-S05A-F02-P-FM09", "A", "none"),  # label without audio
]


def make_msp_improv(
    base: Path, *, label_name: str = "Evaluation.txt", audio_subdir: bool = False
) -> Path:
    """MSP-IMPROV with sessions 1 and 2 (see :data:`MSP_IMPROV_FILES`)."""
    root = base / "MSP-IMPROV"
    audio_root = root / "Audio" if audio_subdir else root
    lines = []
    for stem, letter, audio in MSP_IMPROV_FILES:
        sentence, speaker, condition = stem.split("-")[2], stem.split("-")[3], stem.split("-")[4]
        if audio == "wav":
            write_wav(
                audio_root / f"session{int(speaker[1:])}" / sentence / condition / f"{stem}.wav"
            )
        if letter is not None:
            utd = stem.replace("MSP-", "UTD-", 1)
            lines.append(f"{utd}.avi; {letter}; A:3.000000; V:2.500000; D:3.000000; N:5;")
            lines.append("Subject01; Angry; A:3; V:2; D:3;")
            lines.append("")
    _write_text(root / label_name, "\n".join(lines))
    return root


# ----------------------------------------------------------------------- MSP-Podcast

#: (FileName, EmoClass, SpkrID, Split_Set, audio kind).
MSP_PODCAST_ROWS = [
    ("MSP-PODCAST_0001_0001.wav", "A", "1", "Train", "wav"),
    ("MSP-PODCAST_0001_0002.wav", "H", "1", "Train", "wav"),
    ("MSP-PODCAST_0002_0001.wav", "S", "2", "Validation", "wav"),
    ("MSP-PODCAST_0002_0002.wav", "N", "2", "Test1", "wav"),
    ("MSP-PODCAST_0003_0001.wav", "N", "Unknown", "Train", "wav"),
    ("MSP-PODCAST_0003_0002.wav", "U", "3", "Train", "wav"),
    ("MSP-PODCAST_0003_0003.wav", "X", "3", "Train", "wav"),
    ("MSP-PODCAST_0004_0001.wav", "H", "4", "Test1", "none"),
    ("MSP-PODCAST_0006_0001.wav", "A", "5", "Train", "corrupt"),
]
MSP_PODCAST_UNLABELLED = "MSP-PODCAST_0005_0001.wav"


def make_msp_podcast(
    base: Path, *, label_name: str = "labels_consensus.csv", audio_dir: str = "Audios"
) -> Path:
    """MSP-Podcast with :data:`MSP_PODCAST_ROWS` and one unlabelled file."""
    root = base / "MSP-Podcast"
    header = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
    lines = [header]
    for name, emo, speaker, split, audio in MSP_PODCAST_ROWS:
        lines.append(f"{name},{emo},4.2,3.8,4.0,{speaker},Female,{split}")
        if audio == "wav":
            write_wav(root / audio_dir / name)
        elif audio == "corrupt":
            write_corrupt(root / audio_dir / name)
    write_wav(root / audio_dir / MSP_PODCAST_UNLABELLED)
    _write_text(root / "Labels" / label_name, "\n".join(lines) + "\n")
    return root


# -------------------------------------------------------------- file-name corpora


def make_ravdess(base: Path) -> Path:
    """Two actors: neutral, calm, angry, a song, an unknown code, a bad name, an empty WAV."""
    root = base / "RAVDESS"
    for name in [
        "Actor_01/03-01-01-01-01-01-01.wav",  # neutral
        "Actor_01/03-01-02-01-01-01-01.wav",  # calm
        "Actor_01/03-01-05-02-01-01-01.wav",  # angry
        "Actor_01/03-02-03-01-01-01-01.wav",  # song (happy)
        "Actor_01/03-01-09-01-01-01-01.wav",  # unknown emotion code
        "Actor_01/notes.wav",  # not the naming convention
        "Actor_02/03-01-03-01-01-01-02.wav",  # happy
        "Actor_02/03-01-04-01-01-01-02.wav",  # sad
    ]:
        write_wav(root / name)
    write_empty_wav(root / "Actor_02" / "03-01-01-01-01-02-02.wav")
    return root


def make_crema_d(base: Path) -> Path:
    """Three actors in ``AudioWAV/`` with one out-of-set, one unknown and one empty file."""
    root = base / "CREMA-D"
    for name in [
        "1001_DFA_ANG_XX",
        "1001_IEO_HAP_LO",
        "1002_DFA_NEU_XX",
        "1002_IEO_SAD_HI",
        "1002_ITS_FEA_XX",
        "1003_DFA_BOR_XX",
    ]:
        write_wav(root / "AudioWAV" / f"{name}.wav")
    write_empty_wav(root / "AudioWAV" / "1076_MTI_SAD_XX.wav")
    return root


def make_emodb(base: Path) -> Path:
    """EmoDB ``wav/`` with three speakers, boredom, disgust and a corrupt file."""
    root = base / "EmoDB"
    for name in ["03a01Wa", "03a01Fa", "08a02Tb", "08a02Nc", "08a02La", "10a01Ea", "10b01Xa"]:
        write_wav(root / "wav" / f"{name}.wav")
    write_corrupt(root / "wav" / "10b02Wa.wav")
    return root


def make_tess(base: Path) -> Path:
    """TESS in per-speaker-emotion folders, with a re-packaged duplicate copy."""
    root = base / "TESS"
    for name in [
        "OAF_angry/OAF_back_angry.wav",
        "OAF_Pleasant_surprise/OAF_back_ps.wav",
        "OAF_neutral/OAF_dog_neutral.wav",
        "YAF_happy/YAF_back_happy.wav",
        "YAF_sad/YAF_dog_sad.wav",
        "YAF_sad/YAF_dog_bored.wav",
        "zcopy/YAF_happy/YAF_back_happy.wav",  # the same file again
    ]:
        write_wav(root / name)
    return root


def make_csv_corpus(base: Path) -> Path:
    """A user CSV: relative and absolute paths, aliases, an out-of-set label, a missing file."""
    root = base / "mine"
    write_wav(root / "audio" / "a.wav")
    write_wav(root / "audio" / "b.wav", seconds=0.3)
    write_wav(root / "audio" / "c.wav")
    write_wav(root / "audio" / "d.wav")
    absolute = write_wav(root / "elsewhere" / "e.wav")
    rows = [
        "path,label,speaker,session,duration",
        "audio/a.wav,Anger,s1,day1,",
        "audio/b.wav,neutral,s1,day1,",
        "audio/c.wav,sad,s2,day2,1.5",
        "audio/d.wav,frustrated,s2,day2,",
        "audio/missing.wav,happy,s3,day2,",
        f"{absolute},happiness,s3,day2,",
    ]
    return _write_text(root / "corpus.csv", "\n".join(rows) + "\n")
