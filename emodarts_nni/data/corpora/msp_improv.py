"""MSP-IMPROV from its original release layout.

Audio: ``session{1..6}/<S01A>/<P|R|S|T>/MSP-IMPROV-S01A-F01-P-FM01.wav``, optionally under
``Audio/``. File name: sentence ``S01``, intended emotion ``A|H|S|N``, speaker ``F01``
(gender + session), condition ``P|R|S|T``, turn. Consensus labels come from
``Evaluation.txt`` (some copies: ``Evalution.txt``), lines like
``UTD-IMPROV-S01A-F01-S-FM01.avi; N; A:3.0; V:3.5; ...``; label ids use ``UTD-``/``.avi``
where audio uses ``MSP-``/``.wav``. Per-rater lines are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from emodarts_nni.common.errors import DataError, suggest
from emodarts_nni.data.corpora.common import (
    BAD_FILE_NAME,
    DUPLICATE,
    LABEL_WITHOUT_AUDIO,
    ReadResult,
    count_unlabelled,
    first_existing,
    require_dir,
    resolve_label,
    sorted_files,
)

#: Consensus letters → class names (``X``: raters did not agree).
MSP_IMPROV_CODES: dict[str, str | None] = {
    "A": "angry",
    "H": "happy",
    "S": "sad",
    "N": "neutral",
    "O": "other",
    "X": None,
}
#: Intended-emotion letters in file names (what the actors were asked to convey).
INTENDED_CODES: dict[str, str | None] = {"A": "angry", "H": "happy", "S": "sad", "N": "neutral"}
#: Recording conditions: P natural interaction, R read, S improvised scene, T target.
CONDITIONS = ("P", "R", "S", "T")
LABEL_SOURCES = ("consensus", "filename")

_SESSION_DIR = re.compile(r"^session(\d+)$", re.IGNORECASE)
_AUDIO_NAME = re.compile(r"^MSP-IMPROV-S\d+([A-Z])-([FM])(\d\d)-([A-Z])-\w+$")
_CONSENSUS = re.compile(r"^UTD-IMPROV-([^;\s]+?)(?:\.avi)?\s*;\s*([^;\s]*)\s*;")


def read_msp_improv(
    root: str | Path,
    *,
    all_classes: bool = False,
    label_source: str = "consensus",
    conditions: Iterable[str] | str = CONDITIONS,
) -> ReadResult:
    """Read MSP-IMPROV from ``root`` (holding ``Evaluation.txt`` and ``session1``..).

    ``label_source="consensus"`` (default) uses the raters' consensus from the evaluation
    file; ``"filename"`` uses the intended emotion in the file name and needs no label
    file. ``conditions`` keeps only the listed recording conditions. Speaker = ``F01`` ..
    ``M06``; session = ``session1`` .. ``session6`` (from the speaker number).
    """
    root = require_dir(Path(root), "MSP-IMPROV root")
    if label_source not in LABEL_SOURCES:
        raise DataError(
            f"msp_improv: unknown label_source {label_source!r}"
            + suggest(label_source, LABEL_SOURCES)
        )
    selected = _parse_conditions(conditions)
    audio_root = root / "Audio" if _session_dirs(root / "Audio") else root
    sessions = _session_dirs(audio_root)
    if not sessions:
        raise DataError(f"no session1..session6 folders under {root} or {root / 'Audio'}")
    audio: dict[str, Path] = {}
    for session in sessions:
        for wav in sorted_files(session, "**/*.wav"):
            audio.setdefault(wav.stem, wav)

    result = ReadResult(
        kind="msp_improv",
        root=str(root),
        options={
            "all_classes": all_classes,
            "label_source": label_source,
            "conditions": ",".join(selected),
        },
    )
    if label_source == "filename":
        labels = {key: _intended_letter(key) for key in audio}
        table = INTENDED_CODES
    else:
        label_file = first_existing(
            [root / "Evaluation.txt", root / "Evalution.txt"], "MSP-IMPROV label file"
        )
        labels = _parse_evaluation(label_file, result)
        table = MSP_IMPROV_CODES

    for key in sorted(labels):
        match = _AUDIO_NAME.match(key)
        if not match:
            result.skip(BAD_FILE_NAME, audio.get(key, key))
            continue
        _intended, gender, number, condition = match.groups()
        if condition not in selected:
            result.skip(
                f"condition {condition} not selected (conditions={','.join(selected)})", key
            )
            continue
        label, problem = resolve_label(labels[key], table, all_classes=all_classes)
        if problem:
            result.skip(problem, key)
            continue
        wav = audio.get(key)
        if wav is None:
            result.skip(LABEL_WITHOUT_AUDIO, key)
            continue
        result.add_audio(wav, label, speaker=f"{gender}{number}", session=f"session{int(number)}")
    count_unlabelled(result, audio, set(labels))
    return result


def _parse_conditions(conditions: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(conditions, str):
        conditions = conditions.split(",")
    selected = tuple(sorted({str(c).strip().upper() for c in conditions if str(c).strip()}))
    bad = [c for c in selected if c not in CONDITIONS]
    if bad or not selected:
        raise DataError(
            f"msp_improv: conditions must be a non-empty subset of {','.join(CONDITIONS)}; "
            f"got {','.join(bad) or 'nothing'}"
        )
    return selected


def _session_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _SESSION_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(_SESSION_DIR.match(p.name).group(1)))


def _intended_letter(key: str) -> str:
    match = _AUDIO_NAME.match(key)
    return match.group(1) if match else "?"


def _parse_evaluation(path: Path, result: ReadResult) -> dict[str, str]:
    """Consensus letter per audio key (``MSP-IMPROV-...``) from the evaluation file."""
    labels: dict[str, str] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            match = _CONSENSUS.match(line.strip())
            if not match:
                continue  # per-rater lines and blank lines
            key = "MSP-IMPROV-" + match.group(1)
            if key in labels:
                result.skip(DUPLICATE, f"{path}:{line_no}: {key}")
                continue
            labels[key] = match.group(2).upper()
    return labels


__all__ = ["CONDITIONS", "INTENDED_CODES", "MSP_IMPROV_CODES", "read_msp_improv"]
