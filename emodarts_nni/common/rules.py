"""Validation rules for typed settings: the primitives the config layer and the owners of
each setting share (torch-free, import-cheap).

A rule checks one plain value and converts it (``Number`` turns ``1`` into ``1.0`` where a
float is expected); ``expected`` says what it wants, in words a user can act on. A setting
is declared once, in the module that owns it, as a dataclass field carrying its rule
(:func:`option`); :mod:`emodarts_nni.config.experiment` reads the rule from the field's metadata to
check YAML, and the owner may reuse it to check Python callers.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
import re
from dataclasses import dataclass
from typing import Any


class Invalid(Exception):
    """A value breaks its rule; the caller turns it into an error that names the key."""

    def __init__(self, expected: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected


def show(value: Any) -> str:
    """A value as the user wrote it in YAML, shortened for one-line messages."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, os.PathLike):
        text = repr(os.fspath(value))
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bound(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def is_number(value: Any) -> bool:
    """An int or float, but not a bool (YAML's ``true`` is no number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number:
    """An int (``integer``) or a float (ints accepted and converted), optionally bounded.

    ``description`` replaces the generated wording of :attr:`expected`.
    """

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    description: str | None = None

    @property
    def expected(self) -> str:
        if self.description is not None:
            return self.description
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_bound(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_bound(self.high)}")
        what = "an integer" if self.integer else "a number"
        return " ".join([what, " and ".join(bounds)]) if bounds else what

    def convert(self, value: Any, ctx: Any = None, dotted: str = "") -> int | float:
        # numbers.Integral: numpy integers count too (from Python callers; YAML has none)
        if self.integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise Invalid
        if not self.integer:
            if not is_number(value) or not math.isfinite(value):
                raise Invalid
            value = float(value)
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high:
            raise Invalid
        return value


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false`` (not ``"yes"``, not ``1``)."""

    expected: str = "true or false"

    def convert(self, value: Any, ctx: Any = None, dotted: str = "") -> bool:
        if not isinstance(value, bool):
            raise Invalid
        return value


@dataclass(frozen=True)
class Text:
    """A non-empty string, optionally matching ``pattern``."""

    pattern: str | None = None
    expected: str = "a non-empty string"

    def convert(self, value: Any, ctx: Any = None, dotted: str = "") -> str:
        if not isinstance(value, str) or not value.strip():
            raise Invalid
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise Invalid
        return value


@dataclass(frozen=True)
class Choice:
    """One of ``options``. With ``integer_ok``, an unquoted ``32`` is read as ``"32"``
    (YAML turns ``precision: 32`` into an integer)."""

    options: tuple[str, ...]
    integer_ok: bool = False

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(repr(option) for option in self.options)

    def convert(self, value: Any, ctx: Any = None, dotted: str = "") -> str:
        if self.integer_ok and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or value not in self.options:
            close = isinstance(value, str) and difflib.get_close_matches(
                value.lower(), self.options, n=1
            )
            raise Invalid(self.expected + (f" (did you mean {close[0]!r}?)" if close else ""))
        return value


def checked(name: str, value: Any, rule: Number) -> int | float:
    """``value`` converted by ``rule`` (a Python caller's argument, such as a strategy's
    parameter), or a ``ValueError`` ``"<name> must be <rule.expected>, got <value!r>"``.

    The config layer reports the same rules against a YAML key instead (through
    :class:`Invalid`); this is their one check for code called from Python.
    """
    try:
        return rule.convert(value)
    except Invalid as exc:
        raise ValueError(f"{name} must be {exc.expected or rule.expected}, got {value!r}") from None


def option(default: Any, rule: Any) -> Any:
    """A dataclass field with its default and its validation rule (in the field's metadata)."""
    return dataclasses.field(default=default, metadata={"rule": rule})


#: Frequently used rules.
INT_POS = Number(integer=True, low=1)
INT_NONNEG = Number(integer=True, low=0)
POS = Number(integer=False, low=0, low_open=True)
NONNEG = Number(integer=False, low=0)
FRACTION_OPEN = Number(integer=False, low=0, high=1, low_open=True, high_open=True)
#: A probability that may be 0 but not 1 (dropout, momentum, a held-out share).
PROBABILITY = Number(integer=False, low=0, high=1, high_open=True)
#: :data:`POS` as a Python caller's error words it (``"epsilon_scale must be a positive number"``).
POSITIVE = Number(integer=False, low=0, low_open=True, description="a positive number")

__all__ = [
    "FRACTION_OPEN",
    "INT_NONNEG",
    "INT_POS",
    "NONNEG",
    "POS",
    "POSITIVE",
    "PROBABILITY",
    "Bool",
    "Choice",
    "Invalid",
    "Number",
    "Text",
    "checked",
    "is_number",
    "option",
    "show",
]
