"""Corpus readers: original release layout → :class:`ReadResult` → manifest.

Each reader is a plain function ``read_<kind>(root, *, all_classes=False, **options)``;
:data:`CORPUS_READERS` maps the kind names the CLI accepts to them, and
:func:`build_manifest` is the one entry point that validates kind and options.
:data:`CORPUS_KINDS` (every ``corpus.kind`` an experiment config may name) and
:func:`check_reader_options` are what :mod:`emodarts_nni.config.experiment` validates against.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path

from emodarts_nni.common.errors import DataError, suggest
from emodarts_nni.data.corpora.common import ReadResult
from emodarts_nni.data.corpora.crema_d import read_crema_d
from emodarts_nni.data.corpora.csv_corpus import read_csv_corpus
from emodarts_nni.data.corpora.emodb import read_emodb
from emodarts_nni.data.corpora.iemocap import read_iemocap
from emodarts_nni.data.corpora.msp_improv import read_msp_improv
from emodarts_nni.data.corpora.msp_podcast import read_msp_podcast
from emodarts_nni.data.corpora.ravdess import read_ravdess
from emodarts_nni.data.corpora.tess import read_tess

#: Corpus kind → reader function.
CORPUS_READERS: dict[str, Callable[..., ReadResult]] = {
    "iemocap": read_iemocap,
    "msp_improv": read_msp_improv,
    "msp_podcast": read_msp_podcast,
    "ravdess": read_ravdess,
    "crema_d": read_crema_d,
    "emodb": read_emodb,
    "tess": read_tess,
    "csv": read_csv_corpus,
}


#: Kinds that read no corpus folder: ``synth`` (the embedded corpus, generated on demand)
#: and ``manifest`` (a ready manifest CSV).
ROOTLESS_KINDS = ("synth", "manifest")
#: Every ``corpus.kind`` an experiment config may name.
CORPUS_KINDS = (ROOTLESS_KINDS[0], *CORPUS_READERS, ROOTLESS_KINDS[1])


class ReaderOptionError(DataError):
    """A reader option that does not exist (``expected`` is None) or has the wrong type."""

    def __init__(self, message: str, kind: str, name: str, expected: str | None) -> None:
        super().__init__(message)
        self.kind, self.name, self.expected = kind, name, expected


def reader_options(kind: str) -> dict[str, object]:
    """The options (besides ``all_classes``) a reader accepts, with their defaults.

    The rootless kinds (:data:`ROOTLESS_KINDS`) have none.
    """
    if kind in ROOTLESS_KINDS:
        return {}
    reader = _reader(kind)
    return {
        name: param.default
        for name, param in inspect.signature(reader).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and name != "all_classes"
    }


def build_manifest(
    kind: str, root: str | Path, *, all_classes: bool = False, **options: object
) -> ReadResult:
    """Read corpus ``kind`` from ``root``; unknown kinds or options raise :class:`DataError`.

    ``all_classes=False`` keeps the paper's four classes (neutral, happy, sad, angry);
    ``True`` keeps every class the corpus defines. Write the result with
    :func:`emodarts_nni.data.manifest.write_manifest` (``result.utterances``).
    """
    reader = _reader(kind)
    check_reader_options(kind, options)
    return reader(root, all_classes=all_classes, **options)


def check_reader_options(kind: str, options: Mapping[str, object]) -> None:
    """Each option must be one the reader of ``kind`` has, with the type of its default
    (a comma-separated string may stand for a list); else :class:`ReaderOptionError`."""
    accepted = reader_options(kind)
    for name, value in options.items():
        if name not in accepted:
            valid = sorted(accepted) or [f"(none for kind {kind!r})"]
            raise ReaderOptionError(
                f"{kind}: unknown option {name!r}" + suggest(name, valid), kind, name, None
            )
        _check_type(kind, name, value, accepted[name])


def _check_type(kind: str, name: str, value: object, default: object) -> None:
    """Options keep the type of their default (a comma list may stand for a tuple)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        expected = "true or false"
    elif isinstance(default, tuple):
        ok = isinstance(value, (str, list, tuple))
        expected = "a list or a comma-separated string"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        expected = "a string"
    else:
        return
    if not ok:
        raise ReaderOptionError(
            f"{kind}: option {name!r} expects {expected}, got {value!r}", kind, name, expected
        )


def _reader(kind: str) -> Callable[..., ReadResult]:
    try:
        return CORPUS_READERS[kind]
    except KeyError:
        raise DataError(
            f"unknown corpus kind {kind!r}" + suggest(kind, list(CORPUS_READERS))
        ) from None


__all__ = [
    "CORPUS_KINDS",
    "CORPUS_READERS",
    "ROOTLESS_KINDS",
    "ReadResult",
    "ReaderOptionError",
    "build_manifest",
    "check_reader_options",
    "reader_options",
]
