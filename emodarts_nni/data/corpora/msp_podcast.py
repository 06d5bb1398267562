"""MSP-Podcast from its original release layout.

``Audios/`` (some users rename it ``Audio/``) and ``Labels/labels_consensus.csv``
(releases up to 1.8 spell it ``labels_concensus.csv``) with columns ``FileName, EmoClass,
EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set``.

``SpkrID`` is ``Unknown`` for many files. Those cannot be grouped with anyone, so each
becomes its own speaker ``unknown-<file stem>``: they can never leak across a speaker
split, at the price of many one-file speakers. ``drop_unknown_speakers=True`` skips them.
The official partition goes to the manifest's ``split`` column (``Validation`` in older
releases is normalised to ``Development``); ``session`` stays empty because a podcast has
no recording sessions, so a session protocol is never chosen for this corpus by accident.
"""

from __future__ import annotations

import csv
from pathlib import Path

from emodarts_nni.common.errors import DataError
from emodarts_nni.data.corpora.common import (
    DUPLICATE,
    LABEL_WITHOUT_AUDIO,
    ReadResult,
    count_unlabelled,
    first_existing,
    require_dir,
    resolve_label,
    sorted_files,
)

#: EmoClass letters → class names (``X``: no agreement).
MSP_PODCAST_CODES: dict[str, str | None] = {
    "A": "angry",
    "S": "sad",
    "H": "happy",
    "U": "surprise",
    "F": "fear",
    "D": "disgust",
    "C": "contempt",
    "N": "neutral",
    "O": "other",
    "X": None,
}
REQUIRED_COLUMNS = ("FileName", "EmoClass", "SpkrID", "Split_Set")
UNKNOWN_SPEAKER = "unknown speaker (drop_unknown_speakers=True)"

_SPLIT_NAMES = {"validation": "Development", "development": "Development", "train": "Train"}


def normalise_split(name: str) -> str:
    """Canonical official split name: ``Train``, ``Development``, ``Test1`` .. ``Test3``."""
    name = name.strip()
    return _SPLIT_NAMES.get(name.lower(), name[:1].upper() + name[1:])


def read_msp_podcast(
    root: str | Path,
    *,
    all_classes: bool = False,
    drop_unknown_speakers: bool = False,
) -> ReadResult:
    """Read MSP-Podcast from ``root`` (holding ``Audios/`` and ``Labels/``).

    Speaker = ``SpkrID`` (``unknown-<stem>`` for ``Unknown``, see the module docstring);
    split = ``Split_Set`` normalised; session = ``""``.
    """
    root = require_dir(Path(root), "MSP-Podcast root")
    label_file = first_existing(
        [root / "Labels" / "labels_consensus.csv", root / "Labels" / "labels_concensus.csv"],
        "MSP-Podcast label file",
    )
    audio_dir = first_existing([root / "Audios", root / "Audio"], "MSP-Podcast audio folder")
    # Flat in the releases; some copies nest the files one level deeper.
    wavs = sorted_files(audio_dir, "*.wav") or sorted_files(audio_dir, "**/*.wav")
    audio: dict[str, Path] = {}
    for wav in wavs:
        audio.setdefault(wav.name, wav)

    result = ReadResult(
        kind="msp_podcast",
        root=str(root),
        options={"all_classes": all_classes, "drop_unknown_speakers": drop_unknown_speakers},
    )
    rows = _read_rows(label_file, result)
    unknown = 0
    for name in sorted(rows):
        code, speaker, split = rows[name]
        stem = Path(name).stem
        if speaker.lower() in ("unknown", ""):
            if drop_unknown_speakers:
                result.skip(UNKNOWN_SPEAKER, name)
                continue
            speaker = f"unknown-{stem}"
            unknown += 1
        label, problem = resolve_label(code, MSP_PODCAST_CODES, all_classes=all_classes)
        if problem:
            result.skip(problem, name)
            continue
        wav = audio.get(name)
        if wav is None:
            result.skip(LABEL_WITHOUT_AUDIO, name)
            continue
        result.add_audio(wav, label, speaker=speaker, session="", split=normalise_split(split))
    count_unlabelled(result, audio, set(rows))
    if unknown:
        result.notes.append(
            f"{unknown} rows with SpkrID 'Unknown' each got their own speaker "
            "'unknown-<file stem>' (drop_unknown_speakers=True skips them)"
        )
    return result


def _read_rows(path: Path, result: ReadResult) -> dict[str, tuple[str, str, str]]:
    """``FileName`` (with ``.wav``) → (EmoClass, SpkrID, Split_Set)."""
    rows: dict[str, tuple[str, str, str]] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        for line_no, row in enumerate(reader, start=2):
            name = (row["FileName"] or "").strip()
            if not name:
                continue
            if not name.lower().endswith(".wav"):
                name += ".wav"
            if name in rows:
                result.skip(DUPLICATE, f"{path}:{line_no}: {name}")
                continue
            rows[name] = (
                (row["EmoClass"] or "").strip().upper(),
                (row["SpkrID"] or "").strip(),
                (row["Split_Set"] or "").strip(),
            )
    return rows


__all__ = ["MSP_PODCAST_CODES", "normalise_split", "read_msp_podcast"]
