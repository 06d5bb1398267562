"""User-facing errors.

Every error a user can cause (bad config key, unknown op, corrupt audio, malformed
architecture JSON) is raised as an :class:`EmodartsError` whose message names the
culprit. The CLI prints the message on one line and exits non-zero, never a traceback.
"""

from __future__ import annotations


class EmodartsError(Exception):
    """Base class of errors caused by user input; the message names the culprit."""


class ConfigError(EmodartsError):
    """A YAML config or scope file is invalid (unknown key, wrong type, missing path)."""


class ArchitectureError(EmodartsError):
    """An architecture JSON (or dict) is malformed or does not match its space."""


class DataError(EmodartsError):
    """A corpus, manifest, label file or audio file cannot be used."""


def suggest(name: str, valid: list[str] | tuple[str, ...] | set[str]) -> str:
    """Return ``"; valid: a, b, c"`` plus a close match when there is one, for error messages."""
    import difflib

    valid_sorted = sorted(valid)
    close = difflib.get_close_matches(name, valid_sorted, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; valid: {', '.join(valid_sorted)}"
