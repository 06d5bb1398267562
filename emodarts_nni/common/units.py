"""How counts and sizes are written for people: the one owner of that format (light).

Parameter counts in run reports, study reports, ``emodarts plan`` and error messages all
come from :func:`format_count`, so 500 parameters read "500" everywhere, 12 345 read
"12.3 K" and 1 234 567 read "1.23 M". Byte sizes come from :func:`format_bytes`. The
reading side lives here too: :func:`number` decides which value in a run's CSV or JSON files
is a number and which is missing (and so prints as :data:`MISSING`).
"""

from __future__ import annotations

import math
from typing import Any

#: What a missing value (a run without that metric) prints as, in every table.
MISSING = "–"


def number(value: Any) -> float | None:
    """A finite float from a CSV/JSON value, or ``None`` for blanks, text and NaN."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def shown(text: str) -> str:
    """``text`` for a one-line message: as it is when every character prints, else quoted with
    escapes (a line break, a zero-width space or another invisible character in a label,
    speaker id or path a user supplied would otherwise print invisibly or break the line)."""
    return text if text.isprintable() else repr(text)


def format_count(n: float | None) -> str:
    """``500`` → ``"500"``, ``12345`` → ``"12.3 K"``, ``1234567`` → ``"1.23 M"``.

    ``None`` (or NaN) is :data:`MISSING`. From 10¹⁵ on, a power of ten (``"~10^16"``), since
    only the order of magnitude of such a size means anything (it is refused anyway).
    """
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return MISSING
    if n >= 10**15:
        return f"~10^{math.floor(math.log10(n))}"
    if n >= 10**3:
        for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6)):
            if n >= scale:
                return f"{n / scale:.2f} {unit}"
        return f"{n / 10**3:.1f} K"
    return f"{n:.0f}"


def format_percent(value: float | None) -> str:
    """A fraction as percent with two decimals (``0.7625`` → ``"76.25"``); ``None`` or NaN
    is :data:`MISSING`. Every report table writes UA, WA and F1 this way."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{100 * value:.2f}"


def format_percent_pm(mean: float | None, std: float | None) -> str:
    """``"76.25 ± 3.10"`` (the std only when there is one); a missing mean is :data:`MISSING`."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return MISSING
    return format_percent(mean) + ("" if std is None else f" ± {format_percent(std)}")


def format_seconds(value: float | None) -> str:
    """A wall time for the console: ``42.3`` → ``"42.3 s"``, ``219`` → ``"3 min 39 s"``,
    ``4000`` → ``"1 h 06 min"``; ``None`` or NaN is :data:`MISSING`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_bytes(n: int) -> str:
    """``3 * 2**30`` → ``"3.0 GiB"``; beyond 1024 PiB a power of two."""
    if n >= 2**60:
        return f"~2^{n.bit_length() - 1} B"
    if n < 1024:
        return f"{n} B"
    for power, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB"), start=1):
        if n < 1024 ** (power + 1) or unit == "PiB":
            return f"{n / 1024**power:.1f} {unit}"
    raise AssertionError("unreachable")


__all__ = [
    "MISSING",
    "format_bytes",
    "format_count",
    "format_percent",
    "format_percent_pm",
    "format_seconds",
    "number",
    "shown",
]
