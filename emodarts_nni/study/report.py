"""The study report: ``folds.csv``, ``report.csv``, ``report.md`` and pictures.

Every number comes from the cells' run folders (``metrics.json``); nothing is recomputed.

- ``folds.csv``: one row per finished cell — corpus, scope, arm, fold, seed, ua, wa,
  macro_f1, params, run_dir (and the cell id).
- ``report.csv``: one row per (corpus, scope, arm) — n_folds, ua_mean, ua_std, wa_mean,
  wa_std, params_mean. A fold's value is the mean over that fold's cells (several random
  architectures or seeds); mean and sample std (ddof 1) are over folds.
- ``report.md``: tables shaped like the paper's Tables 3 (searched vs hand-designed), 4 (per
  corpus) and 7 (per scope), and a paired comparison of every searched arm with the random
  architectures' mean, the best baseline and the classical control on the same folds:
  per-fold differences, wins k of n, mean difference and, for n >= 5, the Wilcoxon
  signed-rank p-value (two-sided, scipy).
- PNGs (:mod:`emodarts_nni.study.plots`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import atomic_write_text
from emodarts_nni.common.units import MISSING, format_count
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.reporting.runs import markdown_table, run_warnings, write_csv
from emodarts_nni.study.arms import BASELINE_PREFIX, CLASSICAL_ARM, RANDOM_ARM, is_searched
from emodarts_nni.study.trial import CELLS_FILE, cell_finished, read_cells

FOLD_COLUMNS = (
    "corpus",
    "scope",
    "arm",
    "fold",
    "seed",
    "ua",
    "wa",
    "macro_f1",
    "params",
    "run_dir",
    "cell",
)
REPORT_COLUMNS = (
    "corpus",
    "scope",
    "arm",
    "n_folds",
    "ua_mean",
    "ua_std",
    "wa_mean",
    "wa_std",
    "params_mean",
)
#: Fewest pairs for which a Wilcoxon signed-rank p-value is reported.
WILCOXON_MIN_PAIRS = 5


# --------------------------------------------------------------------------- rows
def fold_rows(study_dir: Path) -> list[dict[str, Any]]:
    """One row per finished cell of the study in ``study_dir``, in the study's cell order."""
    rows = []
    for cell_id, cell in read_cells(study_dir).items():
        if not cell_finished(study_dir, cell_id):
            continue
        metrics = json.loads(RunFolder(Path(study_dir) / cell_id).metrics.read_text())
        parameters = cell["parameters"]
        rows.append(
            {
                "corpus": parameters["corpus"],
                "scope": parameters["scope"],
                "arm": cell["arm"],
                "fold": int(metrics.get("fold", parameters["fold"])),
                "seed": int(metrics.get("seed", parameters["seed"])),
                "ua": float(metrics["ua"]),
                "wa": float(metrics["wa"]),
                "macro_f1": float(metrics["macro_f1"]),
                "params": int(metrics["parameters"]),
                "run_dir": cell_id,
                "cell": cell_id,
                "warnings": run_warnings(metrics),  # single-class model, collapsed search
            }
        )
    return rows


def _per_fold(rows: Sequence[Mapping[str, Any]], key: str) -> dict[int, float]:
    """``{fold: mean of key over the rows of that fold}``."""
    by_fold: dict[int, list[float]] = {}
    for row in rows:
        by_fold.setdefault(int(row["fold"]), []).append(float(row[key]))
    return {fold: float(np.mean(values)) for fold, values in sorted(by_fold.items())}


def _std(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def summary_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (corpus, scope, arm); see the module docstring for the definitions."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["corpus"], row["scope"], row["arm"]), []).append(row)
    out = []
    for (corpus, scope, arm), members in groups.items():
        ua = list(_per_fold(members, "ua").values())
        wa = list(_per_fold(members, "wa").values())
        out.append(
            {
                "corpus": corpus,
                "scope": scope,
                "arm": arm,
                "n_folds": len(ua),
                "ua_mean": float(np.mean(ua)),
                "ua_std": _std(ua),
                "wa_mean": float(np.mean(wa)),
                "wa_std": _std(wa),
                "params_mean": float(np.mean([m["params"] for m in members])),
            }
        )
    return out


# --------------------------------------------------------------------------- paired
@dataclass(frozen=True)
class Comparison:
    """A searched arm against one reference on the folds both have."""

    corpus: str
    scope: str
    arm: str
    reference: str
    folds: tuple[int, ...]
    differences: tuple[float, ...]  # arm UA - reference UA, per fold

    @property
    def n(self) -> int:
        """Number of paired folds."""
        return len(self.differences)

    @property
    def wins(self) -> int:
        """Folds on which the arm's UA is higher."""
        return sum(1 for d in self.differences if d > 0)

    @property
    def mean_difference(self) -> float | None:
        """Mean UA difference over the paired folds."""
        return float(np.mean(self.differences)) if self.differences else None

    @property
    def p_value(self) -> float | None:
        """Two-sided Wilcoxon signed-rank p for n >= 5 (1.0 when every difference is 0)."""
        return wilcoxon_p(self.differences)


def wilcoxon_p(differences: Sequence[float]) -> float | None:
    """The two-sided Wilcoxon signed-rank p-value of paired ``differences``; None for n < 5."""
    if len(differences) < WILCOXON_MIN_PAIRS:
        return None
    if all(d == 0 for d in differences):
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(np.asarray(differences, dtype=float)).pvalue)


def paired(
    arm_ua: Mapping[int, float], reference_ua: Mapping[int, float]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Folds both have and the per-fold differences ``arm - reference``."""
    folds = tuple(sorted(set(arm_ua) & set(reference_ua)))
    return folds, tuple(arm_ua[f] - reference_ua[f] for f in folds)


def comparisons(rows: Sequence[Mapping[str, Any]]) -> list[Comparison]:
    """Every searched arm against the random architectures (same scope), best baseline, classical.

    The best baseline is the baseline arm with the highest mean UA in the corpus.
    """

    def select(corpus: str, arm: str, scope: str | None = None) -> dict[int, float]:
        members = [
            r
            for r in rows
            if r["corpus"] == corpus and r["arm"] == arm and (scope is None or r["scope"] == scope)
        ]
        return _per_fold(members, "ua")

    out = []
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        baselines = {
            r["arm"] for r in rows if r["corpus"] == corpus and r["arm"].startswith(BASELINE_PREFIX)
        }
        best = max(
            sorted(baselines),
            key=lambda arm: np.mean(list(select(corpus, arm).values())),
            default=None,
        )
        searched = dict.fromkeys(
            (r["scope"], r["arm"]) for r in rows if r["corpus"] == corpus and is_searched(r["arm"])
        )
        for scope, arm in searched:
            mine = select(corpus, arm, scope)
            references = [(f"{RANDOM_ARM} mean", select(corpus, RANDOM_ARM, scope))]
            if best is not None:
                references.append((f"best baseline ({best})", select(corpus, best)))
            references.append((CLASSICAL_ARM, select(corpus, CLASSICAL_ARM)))
            for name, theirs in references:
                folds, differences = paired(mine, theirs)
                if folds:
                    out.append(Comparison(corpus, scope, arm, name, folds, differences))
    return out


# --------------------------------------------------------------------------- files
def _exact(value: Any) -> Any:
    """A CSV cell with the value exactly as ``metrics.json`` has it (None blank)."""
    return "" if value is None else value


def _pct(value: float | None) -> str:
    return MISSING if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _pm(mean: float | None, std: float | None) -> str:
    return _pct(mean) + ("" if std is None else f" ± {_pct(std)}")


def _arm_order(arm: str) -> tuple[int, str]:
    rank = 0 if is_searched(arm) else 1 if arm == RANDOM_ARM else 2 if arm != CLASSICAL_ARM else 3
    return rank, arm


def markdown(
    name: str, summary: Sequence[Mapping[str, Any]], compared: Sequence[Comparison], n_cells: int
) -> str:
    """The text of ``report.md``."""

    ordered = sorted(summary, key=lambda r: (r["corpus"], _arm_order(r["arm"]), r["scope"]))
    parts = [
        f"# Study {name}",
        "",
        f"UA and WA in %, mean ± sample std over folds; {n_cells} cells, {len(summary)} groups. "
        f"Every number comes from the cells' `{RunFolder.METRICS}` (`folds.csv` lists them).",
        "",
        "## Table 3 — searched architectures against the controls",
        "",
        markdown_table(
            ["corpus", "arm", "scope", "folds", "UA", "WA", "parameters"],
            [
                [
                    r["corpus"],
                    r["arm"],
                    r["scope"],
                    r["n_folds"],
                    _pm(r["ua_mean"], r["ua_std"]),
                    _pm(r["wa_mean"], r["wa_std"]),
                    format_count(r["params_mean"]),
                ]
                for r in ordered
            ],
        ),
    ]
    searched = [r for r in ordered if is_searched(r["arm"])]
    corpora = list(dict.fromkeys(r["corpus"] for r in summary))
    arms = list(dict.fromkeys((r["arm"], r["scope"]) for r in searched))
    cell = {(r["corpus"], r["arm"], r["scope"]): r for r in searched}
    parts += [
        "",
        "## Table 4 — searched arms per corpus (UA / WA)",
        "",
        markdown_table(
            ["arm", "scope", *corpora],
            [
                [
                    arm,
                    scope,
                    *(
                        f"{_pm(c['ua_mean'], c['ua_std'])} / {_pm(c['wa_mean'], c['wa_std'])}"
                        if (c := cell.get((corpus, arm, scope)))
                        else MISSING
                        for corpus in corpora
                    ),
                ]
                for arm, scope in arms
            ],
        ),
        "",
        "## Table 7 — search scopes",
        "",
        markdown_table(
            ["corpus", "scope", "arm", "UA", "WA", "parameters"],
            [
                [
                    r["corpus"],
                    r["scope"],
                    r["arm"],
                    _pm(r["ua_mean"], r["ua_std"]),
                    _pm(r["wa_mean"], r["wa_std"]),
                    format_count(r["params_mean"]),
                ]
                for r in sorted(searched, key=lambda r: (r["corpus"], r["scope"], r["arm"]))
            ],
        ),
        "",
        "## Paired comparison (UA, percentage points)",
        "",
        "Per fold: the searched arm's UA minus the reference's on the same fold. Wilcoxon: "
        f"two-sided signed-rank p, reported from {WILCOXON_MIN_PAIRS} paired folds on.",
        "",
        markdown_table(
            [
                "corpus",
                "arm",
                "scope",
                "against",
                "n",
                "wins",
                "mean diff",
                "Wilcoxon p",
                "per-fold differences",
            ],
            [
                [
                    c.corpus,
                    c.arm,
                    c.scope,
                    c.reference,
                    c.n,
                    f"{c.wins} of {c.n}",
                    _signed(c.mean_difference),
                    MISSING if c.p_value is None else f"{c.p_value:.3f}",
                    ", ".join(
                        f"{f}: {_signed(d)}" for f, d in zip(c.folds, c.differences, strict=True)
                    ),
                ]
                for c in compared
            ],
        ),
        "",
    ]
    return "\n".join(parts)


def chosen_cells(
    study_dir: Path, rows: Sequence[Mapping[str, Any]], top: int = 3
) -> list[list[Any]]:
    """The most frequently chosen cells: ``[arm, scope, cell genotype, times chosen, of n]``."""
    from collections import Counter

    from emodarts_nni.space.architecture import describe

    found: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        path = RunFolder(Path(study_dir) / row["run_dir"]).architecture
        if is_searched(row["arm"]) and path.is_file():
            genotype = describe(json.loads(path.read_text())["architecture"])
            found.setdefault((row["arm"], row["scope"]), []).extend(genotype.splitlines())
    out = []
    for (arm, scope), cells in found.items():
        n = sum(1 for row in rows if (row["arm"], row["scope"]) == (arm, scope))
        for cell, times in Counter(cells).most_common(top):
            out.append([arm, scope, f"`{cell}`", times, n])
    return out


def _signed(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:+.2f}"


def make_study_report(study_dir: str | Path) -> dict[str, Path]:
    """Write ``folds.csv``, ``report.csv``, ``report.md`` and the PNGs; returns their paths."""
    from emodarts_nni.study import plots

    study_dir = Path(study_dir)
    cells = read_cells(study_dir)
    name = json.loads((study_dir / CELLS_FILE).read_text()).get("name", study_dir.name)
    rows = fold_rows(study_dir)
    if not rows:
        raise EmodartsError(
            f"{study_dir}: no finished cell yet (no {RunFolder.METRICS} in any cell)"
        )
    summary = summary_rows(rows)
    compared = comparisons(rows)
    text = markdown(name, summary, compared, len(cells))
    flagged = [f"- **{row['cell']}**: {w}" for row in rows for w in row["warnings"]]
    if flagged:
        text += "\n".join(["", "## Warnings", "", *flagged, ""])
    chosen = chosen_cells(study_dir, rows)
    if chosen:
        from emodarts_nni.reporting.runs import markdown_table

        text += "\n".join(
            [
                "",
                "## Most frequently chosen cells",
                "",
                markdown_table(["arm", "scope", "cell", "chosen", "of runs"], chosen),
                "",
            ]
        )
    files = {
        "folds": write_csv(study_dir / "folds.csv", FOLD_COLUMNS, rows, _exact),
        "report_csv": write_csv(study_dir / "report.csv", REPORT_COLUMNS, summary, _exact),
        "report": atomic_write_text(study_dir / "report.md", text),
    }
    pictures = {
        "scatter": plots.plot_study_scatter(summary, study_dir / "accuracy_scatter.png"),
        "boxes": plots.plot_fold_boxes(rows, study_dir / "ua_boxes.png"),
        "chosen": plots.plot_chosen_ops(study_dir, rows, study_dir / "chosen_ops.png"),
    }
    pictures |= plots.plot_alpha_per_arm(study_dir, rows, study_dir)
    files |= {key: path for key, path in pictures.items() if path is not None}
    return files


__all__ = [
    "FOLD_COLUMNS",
    "REPORT_COLUMNS",
    "Comparison",
    "comparisons",
    "fold_rows",
    "make_study_report",
    "markdown",
    "paired",
    "summary_rows",
    "wilcoxon_p",
]
