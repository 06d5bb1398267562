"""What the readout is worth: one arm in two scopes that differ only in their readouts, paired
fold by fold, from a readout study's ``folds.csv`` (``experiments/study_readout.yaml``).

    python benchmarks/readout_effect.py docs/studies/study_readout/folds.csv

The study report has the primary comparison (darts with the readout searched against darts
with the mean readout) and, within each scope, every searched arm against its random
architectures and the classical control. This script adds the comparisons across scopes the
report does not make, as one exploratory family (Holm over the rows it prints):

- darts with ``stats`` against darts with ``mean``;
- random architectures with ``stats`` (and with the readout drawn at random) against random
  architectures with ``mean``;

and the parameter cost of each arm (mean over its cells). Each fold's value is the exact mean
over its seeds (and random architectures) exactly as the study report forms it; every
statistic is the report's own (:mod:`emodarts_nni.study.statistics`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from normalisation_effect import by_arm, paired_cells, read_folds

from emodarts_nni.study.comparisons import fold_values
from emodarts_nni.study.statistics import holm, paired

#: (arm, scope) against (arm, scope): the exploratory family across scopes.
PAIRS = (
    ("darts", "emodarts_stats", "darts", "emodarts"),
    ("random-arch", "emodarts_stats", "random-arch", "emodarts"),
    ("random-arch", "emodarts_readout", "random-arch", "emodarts"),
)


def main(argv: list[str] | None = None) -> int:
    """Print the cross-scope table and the parameter cost of every arm."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folds", type=Path, help="folds.csv of a readout study")
    args = parser.parse_args(argv)
    if not args.folds.is_file():
        print(f"error: {args.folds}: no such folds.csv", file=sys.stderr)
        return 2
    rows = read_folds(args.folds)
    groups = by_arm(rows)
    corpora = sorted({str(r["corpus"]) for r in rows})
    found = []
    for corpus in corpora:
        for arm, scope, ref_arm, ref_scope in PAIRS:
            mine, theirs = (
                groups.get((corpus, arm, scope)),
                groups.get((corpus, ref_arm, ref_scope)),
            )
            if mine and theirs:
                a, b = fold_values(mine), fold_values(theirs)
                found.append((corpus, arm, scope, ref_scope, a, b, paired(a, b)))
    adjusted = holm([r.p_value for *_, r in found])
    print(
        "| corpus | arm | scope | against scope | folds | UA % | against UA % "
        "| wins / ties / losses | mean diff | 95 % CI | p | Holm p |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (corpus, arm, scope, ref_scope, a, b, r), p_holm in zip(found, adjusted, strict=True):
        print(
            f"| {corpus} | {arm} | {scope} | {ref_scope} | {r.n} | {paired_cells(a, b, r, p_holm)} |"
        )
    print()
    print("| corpus | arm | scope | cells | parameters (mean) |")
    print("|---|---|---|---|---|")
    for (corpus, arm, scope), cells in sorted(groups.items()):
        params = [float(c["params"]) for c in cells if c.get("params") not in (None, "")]
        if params:
            print(
                f"| {corpus} | {arm} | {scope} | {len(cells)} | {sum(params) / len(params):,.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
