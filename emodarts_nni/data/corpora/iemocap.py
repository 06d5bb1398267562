"""IEMOCAP (``IEMOCAP_full_release/``) from its original release layout.

Audio: ``Session{N}/sentences/wav/<dialog>/<utterance>.wav``; labels: the consensus lines
of ``Session{N}/dialog/EmoEvaluation/<dialog>.txt`` (``[start - end]<TAB>id<TAB>code<TAB>
[V, A, D]``). Rater lines are ignored; the first ``[`` line of a file may be a header.

Utterances are keyed by id and visited in sorted order, so the result never depends on
glob order (the authors' de-duplication dropped about half of the improvised data).
"""

from __future__ import annotations

import re
from pathlib import Path

from emodarts_nni.common.errors import DataError
from emodarts_nni.data.corpora.common import (
    BAD_FILE_NAME,
    DUPLICATE,
    LABEL_WITHOUT_AUDIO,
    ReadResult,
    count_unlabelled,
    require_dir,
    resolve_label,
    sorted_files,
)

#: IEMOCAP category codes → readable class names (``None``: no agreement, never a class).
IEMOCAP_CODES: dict[str, str | None] = {
    "neu": "neutral",
    "hap": "happy",
    "sad": "sad",
    "ang": "angry",
    "exc": "excited",
    "fru": "frustrated",
    "fea": "fear",
    "sur": "surprise",
    "dis": "disgust",
    "oth": "other",
    "xxx": None,
}

SCRIPTED = "scripted dialog (improvised_only=True)"
MALFORMED_LINE = "malformed label line"

_SESSION_DIR = re.compile(r"^Session(\d+)$")
_CONSENSUS = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(\S+)\s+(\S+)")
_UTTERANCE = re.compile(r"^Ses(\d\d)[FM]_(\S+)_([FM])\d+$")


def read_iemocap(
    root: str | Path,
    *,
    all_classes: bool = False,
    improvised_only: bool = True,
    merge_excited: bool = False,
) -> ReadResult:
    """Read IEMOCAP from ``root`` (``IEMOCAP_full_release`` or the folder holding it).

    Speaker = session + gender letter of the utterance suffix (``Ses01F_impro01_M003`` →
    ``Ses01M``: 10 speakers); session = ``Session1`` … ``Session5``. ``improvised_only``
    keeps the improvised dialogs (the paper); ``merge_excited`` counts ``exc`` as happy
    (the common 4-class convention) and is reported in the summary either way.
    """
    root = require_dir(Path(root), "IEMOCAP root")
    if not _session_dirs(root) and (root / "IEMOCAP_full_release").is_dir():
        root = root / "IEMOCAP_full_release"
    sessions = _session_dirs(root)
    if not sessions:
        raise DataError(f"no Session1..Session5 folders under IEMOCAP root {root}")

    result = ReadResult(
        kind="iemocap",
        root=str(root),
        options={
            "all_classes": all_classes,
            "improvised_only": improvised_only,
            "merge_excited": merge_excited,
        },
    )
    labels: dict[str, str] = {}  # utterance id -> code; first line (sorted files) wins
    audio: dict[str, Path] = {}
    for session in sessions:
        label_dir = require_dir(session / "dialog" / "EmoEvaluation", "IEMOCAP label folder")
        label_files = sorted_files(label_dir, "*.txt")
        if not label_files:
            raise DataError(f"no EmoEvaluation label files (*.txt) in {label_dir}")
        for label_file in label_files:
            _parse_label_file(label_file, labels, result)
        wav_dir = require_dir(session / "sentences" / "wav", "IEMOCAP audio folder")
        for wav in sorted_files(wav_dir, "*/*.wav"):
            audio.setdefault(wav.stem, wav)

    merge = {"exc": "happy"} if merge_excited else None
    excited = 0
    for utt_id in sorted(labels):
        match = _UTTERANCE.match(utt_id)
        if not match:
            result.skip(BAD_FILE_NAME, utt_id)
            continue
        session_no, dialog, gender = match.groups()
        if improvised_only and not dialog.startswith("impro"):
            result.skip(SCRIPTED, utt_id)
            continue
        code = labels[utt_id]
        excited += code == "exc"
        label, problem = resolve_label(code, IEMOCAP_CODES, all_classes=all_classes, merge=merge)
        if problem:
            result.skip(problem, utt_id)
            continue
        wav = audio.get(utt_id)
        if wav is None:
            result.skip(LABEL_WITHOUT_AUDIO, utt_id)
            continue
        result.add_audio(
            wav,
            label,
            speaker=f"Ses{session_no}{gender}",
            session=f"Session{int(session_no)}",
        )
    count_unlabelled(result, audio, set(labels))

    if merge_excited:
        result.notes.append(f"merge_excited=True: {excited} 'exc' (excited) counted as happy")
    elif excited:
        fate = "kept as 'excited'" if all_classes else "skipped"
        result.notes.append(
            f"merge_excited=False: {excited} 'exc' (excited) utterances {fate}, "
            "not merged into happy (the common 4-class convention merges them)"
        )
    return result


def _session_dirs(root: Path) -> list[Path]:
    found = [p for p in root.iterdir() if p.is_dir() and _SESSION_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(_SESSION_DIR.match(p.name).group(1)))


def _parse_label_file(path: Path, labels: dict[str, str], result: ReadResult) -> None:
    """Collect consensus lines of one EmoEvaluation file into ``labels``."""
    seen_bracket = False
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.startswith("["):
                continue  # rater lines (C-E1:, A-F2: ...), comments, blank lines
            match = _CONSENSUS.match(line)
            first, seen_bracket = not seen_bracket, True
            if not match:
                if not first:  # the first bracket line may be a column header
                    result.skip(MALFORMED_LINE, f"{path}:{line_no}")
                continue
            utt_id, code = match.groups()
            if utt_id in labels:
                result.skip(DUPLICATE, f"{path}:{line_no}: {utt_id}")
                continue
            labels[utt_id] = code


__all__ = ["IEMOCAP_CODES", "read_iemocap"]
