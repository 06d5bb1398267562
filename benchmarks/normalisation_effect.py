"""What transductive normalisation is worth: the same arms in two studies that differ only in
``features.normalisation`` (``train``: inductive; ``speaker``: each test speaker z-scored with
its own unlabelled test utterances), paired fold by fold.

    python benchmarks/normalisation_effect.py \\
        docs/studies/study_evidence_transductive-folds.csv docs/studies/study_evidence-folds.csv

Reads two committed ``folds.csv`` files (the study report's, with exact UA fractions), takes
every arm both have, forms each fold's value as the exact mean over its seeds (and random
architectures) exactly as the study report does, and prints one markdown row per arm:
transductive minus inductive, wins / ties / losses, mean difference, 95 % bootstrap CI, exact
Wilcoxon p and Holm p over the arms compared. Every statistic is the study report's own
(:mod:`emodarts_nni.study.statistics`); nothing is re-implemented here.
"""

from __future__ import annotations

import argparse
import csv
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from emodarts_nni.study.comparisons import fold_values
from emodarts_nni.study.statistics import holm, paired


def read_folds(path: Path) -> list[dict[str, object]]:
    """The rows of a study's ``folds.csv``, ``ua_exact`` as a :class:`Fraction`."""
    with path.open(newline="") as handle:
        rows: list[dict[str, object]] = []
        for row in csv.DictReader(handle):
            rows.append({**row, "ua_exact": Fraction(row["ua_exact"])})
    return rows


def by_arm(rows: list[dict[str, object]]) -> dict[tuple[str, str, str], list[dict[str, object]]]:
    """Rows grouped by (corpus, arm, scope)."""
    groups: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for row in rows:
        key = (str(row["corpus"]), str(row["arm"]), str(row["scope"]))
        groups.setdefault(key, []).append(row)
    return groups


def main(argv: list[str] | None = None) -> int:
    """Print the paired transductive-minus-inductive table for the arms both studies have."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transductive", type=Path, help="folds.csv of the speaker-normalised study")
    parser.add_argument("inductive", type=Path, help="folds.csv of the train-normalised study")
    args = parser.parse_args(argv)
    for path in (args.transductive, args.inductive):
        if not path.is_file():
            print(f"error: {path}: no such folds.csv", file=sys.stderr)
            return 2
    trans, ind = by_arm(read_folds(args.transductive)), by_arm(read_folds(args.inductive))
    common = [key for key in trans if key in ind]
    results = [paired(fold_values(trans[k]), fold_values(ind[k])) for k in common]
    adjusted = holm([r.p_value for r in results])
    print(
        "| corpus | arm | folds | transductive UA % | inductive UA % | wins / ties / losses "
        "| mean diff | 95 % CI | p | Holm p |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, r, p_holm in zip(common, results, adjusted, strict=True):
        corpus, arm, _scope = key
        cells = paired_cells(fold_values(trans[key]), fold_values(ind[key]), r, p_holm)
        print(f"| {corpus} | {arm} | {r.n} | {cells} |")
    return 0


def paired_cells(mine: dict, theirs: dict, r: Any, p_holm: float | None) -> str:
    """The table cells of one paired comparison ``r`` (:func:`paired` of ``mine`` and
    ``theirs``, fold → exact UA): both means, wins / ties / losses, mean difference, CI, p,
    Holm p, in percent where they are UA."""
    mean_mine = 100 * float(sum(mine[f] for f in r.folds)) / r.n
    mean_theirs = 100 * float(sum(theirs[f] for f in r.folds)) / r.n
    ci = "–" if r.ci is None else f"[{100 * r.ci[0]:+.2f}, {100 * r.ci[1]:+.2f}]"
    p = "–" if r.p_value is None else f"{r.p_value:.4f}"
    ph = "–" if p_holm is None else f"{p_holm:.4f}"
    return (
        f"{mean_mine:.2f} | {mean_theirs:.2f} | {r.wins} / {r.ties} / {r.losses} | "
        f"{100 * r.mean_difference:+.2f} | {ci} | {p} | {ph}"
    )


if __name__ == "__main__":
    sys.exit(main())
