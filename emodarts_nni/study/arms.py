"""What a study cell is: its kind and arm, and which arms are searched (import-free).

A cell's kind says what runs in it: a search (its arm is the strategy), a random
architecture, a hand-designed baseline (arm ``baseline:NAME``) or the classical control.
The runner, the trial, the report and its pictures all classify cells with the names here;
nothing in this module imports, so the NNI trial and the pictures can use it cheaply.
"""

from __future__ import annotations

#: A searched cell: the strategy searches, then the result is retrained and evaluated.
SEARCH_KIND = "search"
#: A random architecture of the search space, retrained and evaluated.
RANDOM_KIND = "random-arch"
#: A hand-designed baseline model, trained and evaluated.
BASELINE_KIND = "baseline"
#: The classical control (logistic regression on utterance-level MFCC statistics).
CLASSICAL_KIND = "classical"
#: Cell kinds; the arm of a ``search`` cell is its strategy.
KINDS = (SEARCH_KIND, RANDOM_KIND, BASELINE_KIND, CLASSICAL_KIND)

#: The arm of every random-architecture cell.
RANDOM_ARM = RANDOM_KIND
#: The arm of every classical-control cell.
CLASSICAL_ARM = CLASSICAL_KIND
#: A baseline cell's arm is this prefix and the baseline's name (``baseline:cnn``).
BASELINE_PREFIX = f"{BASELINE_KIND}:"


def is_searched(arm: str) -> bool:
    """Whether ``arm`` is a search strategy (not a control)."""
    return arm not in (RANDOM_ARM, CLASSICAL_ARM) and not arm.startswith(BASELINE_PREFIX)


__all__ = [
    "BASELINE_KIND",
    "BASELINE_PREFIX",
    "CLASSICAL_ARM",
    "CLASSICAL_KIND",
    "KINDS",
    "RANDOM_ARM",
    "RANDOM_KIND",
    "SEARCH_KIND",
    "is_searched",
]
