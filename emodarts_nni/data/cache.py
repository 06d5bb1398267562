"""Where emodarts-nni keeps generated data (the embedded corpus, cached features), and
how cache entries are named."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root: ``cache_dir`` if given, else ``$XDG_CACHE_HOME/emodarts-nni``, else
    ``~/.cache/emodarts-nni``.

    The folder is not created here; writers create what they need beneath it.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "emodarts-nni"


def digest(text: str) -> str:
    """The SHA-256 of ``text`` in hex: cache folder and file names are prefixes of it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["cache_root", "digest"]
