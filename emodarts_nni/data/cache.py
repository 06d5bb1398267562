"""Where emodarts-nni keeps generated data (the embedded corpus, cached features)."""

from __future__ import annotations

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


__all__ = ["cache_root"]
