"""The study report: ``folds.csv``, ``report.csv``, ``report.md`` and pictures.

Every number comes from the cells' run folders (``metrics.json``, ``config.yaml``); the
statistics are :mod:`emodarts_nni.study.statistics`, what is compared with what is
:mod:`emodarts_nni.study.comparisons`, the closing checklist :mod:`emodarts_nni.study.checklist`.

- ``folds.csv``: one row per finished cell — corpus, scope, arm, fold, seed, ua, ua_exact
  (the UA of the cell's confusion matrix as an exact ``num/den``), recall_counts (each
  class's ``correct/support``), wa, macro_f1, val_ua, params, search_seconds,
  retrain_seconds, normalisation, run_dir, cell. Every line of ``report.md`` but the
  checklist can be recomputed from it alone.
- ``report.csv``: one row per (corpus, scope, arm) — n_folds, n_seeds, ua_mean, ua_std,
  ua_seed_std, wa_mean, wa_std, val_ua_mean, params_mean, normalisation. A fold's value is
  the exact mean over that fold's cells (seeds, random architectures); mean and sample std
  (ddof 1) are over folds; ``ua_seed_std`` is the mean over folds of the sample std across
  seeds within the fold.
- ``report.md``: the transductive-normalisation notice (when a cell used it), the primary
  comparison (unadjusted), tables shaped like the paper's Tables 3, 4 and 7, the exploratory
  comparisons (Holm-adjusted): wins / ties / losses on exact UA, mean difference, bootstrap
  95 % CI, exact Wilcoxon p, and in words where the folds cannot reach p < 0.05; warnings,
  the most chosen cells and, last, the NAS best-practices checklist.
- PNGs (:mod:`emodarts_nni.study.plots`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import atomic_write_text
from emodarts_nni.common.units import (
    MISSING,
    format_count,
    format_percent,
    format_percent_pm,
    number,
)
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.reporting.runs import markdown_table, run_warnings, write_csv
from emodarts_nni.space.genotype import READOUT_LABEL
from emodarts_nni.study.arms import CLASSICAL_ARM, RANDOM_ARM, is_searched
from emodarts_nni.study.checklist import checklist
from emodarts_nni.study.comparisons import (
    BaselineChoice,
    Comparison,
    best_baseline,
    comparisons,
    exact_value,
    fold_values,
)
from emodarts_nni.study.statistics import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    exact_ua,
    smallest_p,
)
from emodarts_nni.study.trial import CELLS_FILE, cell_finished, read_cells

FOLD_COLUMNS = (
    "corpus",
    "scope",
    "arm",
    "fold",
    "seed",
    "ua",
    "ua_exact",
    "recall_counts",
    "wa",
    "macro_f1",
    "val_ua",
    "params",
    "search_seconds",
    "retrain_seconds",
    "normalisation",
    "run_dir",
    "cell",
)
REPORT_COLUMNS = (
    "corpus",
    "scope",
    "arm",
    "n_folds",
    "n_seeds",
    "ua_mean",
    "ua_std",
    "ua_seed_std",
    "wa_mean",
    "wa_std",
    "val_ua_mean",
    "params_mean",
    "normalisation",
)
#: ``features.normalisation`` value that uses the test speakers' unlabelled utterances.
TRANSDUCTIVE = "speaker"
#: How far a ``metrics.json`` UA may be from its confusion matrix's before it is flagged.
UA_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- rows
def _normalisation(run_dir: Path) -> str | None:
    """``features.normalisation`` of the cell's resolved ``config.yaml`` (None: unreadable)."""
    from emodarts_nni.common.yaml_loader import parse_yaml

    path = RunFolder(run_dir).config
    try:
        config = parse_yaml(path.read_text(encoding="utf-8"), str(path))
        features = config.get("features") or {}
        value = features.get("normalisation")
    except Exception:  # a missing or damaged config: the report shows the value as unknown
        return None
    return None if value is None else str(value)


def _exact_ua(metrics: Mapping[str, Any]) -> tuple[Fraction, str | None, list[str]]:
    """The cell's UA as a fraction, its per-class ``correct/support`` and any warnings."""
    confusion = metrics.get("confusion_matrix")
    ua = float(metrics["ua"])
    if not confusion:
        return Fraction(ua), None, [f"no confusion_matrix: UA compared as the float {ua!r}"]
    value = exact_ua(confusion)
    counts = " ".join(f"{int(r[i])}/{sum(int(v) for v in r)}" for i, r in enumerate(confusion))
    warnings = []
    if abs(float(value) - ua) > UA_TOLERANCE:
        warnings.append(f"ua {ua!r} differs from its confusion matrix's UA {float(value)!r}")
    return value, counts, warnings


def fold_rows(study_dir: Path) -> list[dict[str, Any]]:
    """One row per finished cell of the study in ``study_dir``, in the study's cell order."""
    rows = []
    for cell_id, cell in read_cells(study_dir).items():
        if not cell_finished(study_dir, cell_id):
            continue
        run_dir = Path(study_dir) / cell_id
        metrics = json.loads(RunFolder(run_dir).metrics.read_text())
        parameters = cell["parameters"]
        ua_exact, recall_counts, problems = _exact_ua(metrics)
        rows.append(
            {
                "corpus": parameters["corpus"],
                "scope": parameters["scope"],
                "arm": cell["arm"],
                "fold": int(metrics.get("fold", parameters["fold"])),
                "seed": int(metrics.get("seed", parameters["seed"])),
                "ua": float(metrics["ua"]),
                "ua_exact": ua_exact,
                "recall_counts": recall_counts,
                "wa": float(metrics["wa"]),
                "macro_f1": float(metrics["macro_f1"]),
                "val_ua": number(metrics.get("val_ua")),
                "params": int(metrics["parameters"]),
                "search_seconds": number(metrics.get("search_seconds")),
                "retrain_seconds": number(metrics.get("retrain_seconds")),
                "normalisation": _normalisation(run_dir),
                "run_dir": cell_id,
                "cell": cell_id,
                # single-class model, collapsed search, a UA its confusion matrix disagrees with
                "warnings": run_warnings(metrics) + problems,
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


def seed_spread(rows: Sequence[Mapping[str, Any]]) -> tuple[int, float | None]:
    """``(most seeds on a fold, mean over folds of the sample std of UA across seeds)``.

    A seed's value on a fold is the mean over its cells (random architectures); folds with
    one seed have no spread; ``None`` when no fold has two.
    """
    by_fold: dict[int, dict[int, list[float]]] = {}
    for row in rows:
        seeds = by_fold.setdefault(int(row["fold"]), {})
        seeds.setdefault(int(row["seed"]), []).append(float(exact_value(row)))
    spreads = []
    for seeds in by_fold.values():
        spread = _std([float(np.mean(v)) for v in seeds.values()])
        if spread is not None:
            spreads.append(spread)
    n_seeds = max((len(seeds) for seeds in by_fold.values()), default=0)
    return n_seeds, (float(np.mean(spreads)) if spreads else None)


def summary_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (corpus, scope, arm); see the module docstring for the definitions."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["corpus"], row["scope"], row["arm"]), []).append(row)
    out = []
    for (corpus, scope, arm), members in groups.items():
        ua = [float(v) for v in fold_values(members).values()]
        wa = list(_per_fold(members, "wa").values())
        n_seeds, seed_std = seed_spread(members)
        validation = [m for m in members if m.get("val_ua") is not None]
        normalisations = sorted({str(m.get("normalisation") or MISSING) for m in members})
        out.append(
            {
                "corpus": corpus,
                "scope": scope,
                "arm": arm,
                "n_folds": len(ua),
                "n_seeds": n_seeds,
                "ua_mean": float(np.mean(ua)),
                "ua_std": _std(ua),
                "ua_seed_std": seed_std,
                "wa_mean": float(np.mean(wa)),
                "wa_std": _std(wa),
                "val_ua_mean": (
                    float(np.mean(list(_per_fold(validation, "val_ua").values())))
                    if len(validation) == len(members)
                    else None
                ),
                "params_mean": float(np.mean([m["params"] for m in members])),
                "normalisation": ", ".join(normalisations),
            }
        )
    return out


# --------------------------------------------------------------------------- text
def _csv_cell(value: Any) -> Any:
    """A CSV cell with the value exactly as recorded (None blank, a fraction as num/den)."""
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    return "" if value is None else value


def _signed(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:+.2f}"


def _difference(value: float) -> str:
    """A per-fold difference; an exact tie reads ``tie`` (``+0.00`` is a rounded non-tie)."""
    return "tie" if value == 0 else _signed(value)


def _p(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:.1e}" if 0 < value < 1e-4 else f"{value:.4f}"


def _ci(c: Comparison) -> str:
    ci = c.result.ci
    return MISSING if ci is None else f"[{_signed(ci[0])}, {_signed(ci[1])}]"


def _wtl(c: Comparison) -> str:
    return f"{c.wins} / {c.ties} / {c.losses}"


def _arm_order(arm: str) -> tuple[int, str]:
    rank = 0 if is_searched(arm) else 1 if arm == RANDOM_ARM else 2 if arm != CLASSICAL_ARM else 3
    return rank, arm


def _ua_with_seeds(r: Mapping[str, Any]) -> str:
    seeds = r.get("ua_seed_std")
    return format_percent_pm(r["ua_mean"], r["ua_std"]) + (
        "" if seeds is None else f" (seeds ± {format_percent(seeds)})"
    )


def _floor_words(c: Comparison) -> str:
    """Why p cannot reach α with these folds (empty when it can)."""
    if c.result.can_reach_alpha:
        return ""
    n = c.wins + c.losses
    if n == 0:
        return "Every fold is tied: there is no test."
    return (
        f"With {n} non-tied fold{'s' if n != 1 else ''} the smallest possible exact two-sided "
        f"p is 2/2^{n} = {smallest_p(n):.4g}: p < {ALPHA:g} cannot be reached, whatever the "
        "differences."
    )


def _primary_section(compared: Sequence[Comparison], named: Mapping[str, Any] | None) -> list[str]:
    out = ["## Primary comparison", ""]
    primary = next((c for c in compared if c.primary), None)
    if named is None:
        return out + [
            "No primary comparison was named in the study file (`primary:`), so every "
            "comparison in this report is exploratory.",
            "",
        ]
    where = ", ".join(f"{k} {named[k]}" for k in ("corpus", "scope") if named.get(k))
    if primary is None:
        return out + [
            f"Named in the study file: {named['arm']} against {named['against']}"
            f"{f' ({where})' if where else ''}; no fold has finished cells of both yet.",
            "",
        ]
    c = primary
    p = "— (every fold tied)" if c.p_value is None else _p(c.p_value)
    return out + [
        f"Named in the study file before any result (`primary:`): **{c.arm} against the "
        f"{c.label}** ({c.corpus}, scope {c.scope}), test UA on the {c.n} folds both have; "
        "each fold's value is the exact mean over its seeds (and random architectures). "
        "Not adjusted for multiplicity.",
        "",
        f"- wins / ties / losses: {_wtl(c)} (exact UA fractions; a tie is an equal fraction)",
        f"- mean paired difference: {_signed(c.mean_difference)} points, 95 % bootstrap CI "
        f"{_ci(c)} (folds resampled)",
        f"- exact two-sided Wilcoxon signed-rank p = {p}",
        *([f"- {_floor_words(c)}"] if _floor_words(c) else []),
        "- per fold: "
        + ", ".join(f"{f}: {_difference(d)}" for f, d in zip(c.folds, c.differences, strict=True)),
        "",
    ]


def _exploratory_section(
    compared: Sequence[Comparison], baselines: Sequence[BaselineChoice]
) -> list[str]:
    exploratory = [c for c in compared if not c.primary]
    if not exploratory:  # e.g. a study of one searched arm and the control it is named against
        return [
            "## Exploratory comparisons (UA, percentage points; Holm-adjusted)",
            "",
            "None: the primary comparison is the study's only comparison.",
            "",
        ]
    floors = sorted({c.wins + c.losses for c in exploratory if not c.result.can_reach_alpha})
    chosen = [b.describe() for b in baselines if b.validation_ua]
    lines = [
        "## Exploratory comparisons (UA, percentage points; Holm-adjusted)",
        "",
        "Each searched arm against the random architectures' mean (same scope), the best "
        "baseline and the classical control, on the folds both have (a fold's value is the "
        "exact mean over its seeds and random architectures; seeds are never pairs). "
        "Wins / ties / losses compare exact UA fractions. p: exact two-sided Wilcoxon "
        "signed-rank test (tied folds dropped, equal magnitudes mid-ranked). CI: 95 % "
        f"percentile bootstrap of the mean difference, folds resampled ({BOOTSTRAP_RESAMPLES:,} "
        f"resamples, numpy seed {BOOTSTRAP_SEED}). Holm p: Holm's step-down adjustment over "
        f"these {len(exploratory)} comparisons (all folds tied counts as p = 1).",
        "",
    ]
    if chosen:
        lines += [
            "Best baseline, chosen on mean validation UA (never on test): "
            + "; ".join(chosen)
            + ".",
            "",
        ]
    if floors:
        shown = ", ".join(f"n = {n}: {smallest_p(n):.4g}" for n in floors if n > 0)
        lines += [
            f"† p < {ALPHA:g} is impossible for the comparisons marked so: n non-tied folds "
            f"give at least p = 2/2^n ({shown or 'no non-tied fold'}).",
            "",
        ]
    lines.append(
        markdown_table(
            [
                "corpus",
                "arm",
                "scope",
                "against",
                "n",
                "wins / ties / losses",
                "mean diff",
                "95 % CI",
                "p",
                "Holm p",
                "per-fold differences",
            ],
            [
                [
                    c.corpus,
                    c.arm,
                    c.scope,
                    c.label,
                    c.n,
                    _wtl(c),
                    _signed(c.mean_difference),
                    _ci(c),
                    (_p(c.p_value) if c.p_value is not None else "— (all tied)")
                    + ("" if c.result.can_reach_alpha else " †"),
                    _p(c.p_adjusted),
                    ", ".join(
                        f"{f}: {_difference(d)}"
                        for f, d in zip(c.folds, c.differences, strict=True)
                    ),
                ]
                for c in exploratory
            ],
        )
    )
    return lines + [""]


def markdown(
    name: str,
    summary: Sequence[Mapping[str, Any]],
    compared: Sequence[Comparison],
    n_cells: int,
    *,
    primary: Mapping[str, Any] | None = None,
    baselines: Sequence[BaselineChoice] = (),
    finished: int | None = None,
) -> str:
    """The text of ``report.md`` up to its warnings (the checklist is added after them).

    ``primary``: the study's named primary comparison (``study.json``), ``None`` when the
    study file names none; ``baselines``: how each corpus's best baseline was chosen;
    ``finished``: how many of the ``n_cells`` cells have finished.
    """
    ordered = sorted(summary, key=lambda r: (r["corpus"], _arm_order(r["arm"]), r["scope"]))
    transductive = [r["arm"] for r in ordered if TRANSDUCTIVE in str(r.get("normalisation"))]
    parts = [f"# Study {name}", ""]
    if transductive:
        parts += [
            f"**Transductive normalisation**: {', '.join(dict.fromkeys(transductive))} use "
            f"`features.normalisation: {TRANSDUCTIVE}`, which z-scores each test speaker with "
            "statistics over all of that speaker's test utterances (the test speakers' "
            "unlabelled data is used).",
            "",
        ]
    done = "" if finished is None or finished == n_cells else f" ({finished} finished)"
    parts += [
        f"UA and WA in %, mean ± sample std over folds; a fold's value is the mean over its "
        f"seeds (and random architectures), and *seed sd* is the mean over folds of the sample "
        f"std across seeds. {n_cells} cells{done}, {len(summary)} groups. Every number comes "
        f"from the cells' `{RunFolder.METRICS}`; `folds.csv` lists each cell with its exact UA "
        "(`ua_exact`, from its confusion matrix), from which every comparison below can be "
        "recomputed.",
        "",
        *_primary_section(compared, primary),
        "## Table 3 — searched architectures against the controls",
        "",
        markdown_table(
            [
                "corpus",
                "arm",
                "scope",
                "folds",
                "seeds",
                "UA",
                "seed sd",
                "WA",
                "val UA",
                "parameters",
                "normalisation",
            ],
            [
                [
                    r["corpus"],
                    r["arm"],
                    r["scope"],
                    r["n_folds"],
                    r.get("n_seeds", 1),
                    format_percent_pm(r["ua_mean"], r["ua_std"]),
                    format_percent(r.get("ua_seed_std")),
                    format_percent_pm(r["wa_mean"], r["wa_std"]),
                    format_percent(r.get("val_ua_mean")),
                    format_count(r["params_mean"]),
                    r.get("normalisation") or MISSING,
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
                        f"{_ua_with_seeds(c)} / {format_percent_pm(c['wa_mean'], c['wa_std'])}"
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
            ["corpus", "scope", "arm", "UA", "seed sd", "WA", "parameters"],
            [
                [
                    r["corpus"],
                    r["scope"],
                    r["arm"],
                    format_percent_pm(r["ua_mean"], r["ua_std"]),
                    format_percent(r.get("ua_seed_std")),
                    format_percent_pm(r["wa_mean"], r["wa_std"]),
                    format_count(r["params_mean"]),
                ]
                for r in sorted(searched, key=lambda r: (r["corpus"], r["scope"], r["arm"]))
            ],
        ),
        "",
        *_exploratory_section(compared, baselines),
    ]
    return "\n".join(parts)


def chosen_cells(
    study_dir: Path, rows: Sequence[Mapping[str, Any]], top: int = 3
) -> list[list[Any]]:
    """The most frequently chosen cells, and every readout chosen (when the readout was
    searched or fixed at another than mean): ``[arm, scope, genotype line, times chosen, of n]``."""
    from collections import Counter

    from emodarts_nni.space.architecture import describe

    found: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        path = RunFolder(Path(study_dir) / row["run_dir"]).architecture
        if is_searched(row["arm"]) and path.is_file():
            doc = json.loads(path.read_text())
            genotype = describe(doc["architecture"], doc.get("space", {}).get("readouts"))
            found.setdefault((row["arm"], row["scope"]), []).extend(genotype.splitlines())
    out = []
    for (arm, scope), cells in found.items():
        n = sum(1 for row in rows if (row["arm"], row["scope"]) == (arm, scope))
        readouts = [c for c in cells if c.startswith(f"{READOUT_LABEL}:")]
        others = [c for c in cells if not c.startswith(f"{READOUT_LABEL}:")]
        # Every readout chosen (a handful of values), the most chosen cells (all distinct).
        for cell, times in [*Counter(readouts).most_common(), *Counter(others).most_common(top)]:
            out.append([arm, scope, f"`{cell}`", times, n])
    return out


def console_summary(study_dir: str | Path) -> list[str]:
    """The lines ``emodarts study`` ends with: UA per arm (mean ± std over folds, the seed
    spread beside it) and the study file's primary comparison, as report.md gives them."""
    study_dir = Path(study_dir)
    rows = fold_rows(study_dir)
    if not rows:
        return []
    summary = sorted(summary_rows(rows), key=lambda r: (r["corpus"], _arm_order(r["arm"])))
    corpora = len({r["corpus"] for r in summary}) > 1
    scopes = len({r["scope"] for r in summary if is_searched(r["arm"])}) > 1
    names = [
        (f"{r['corpus']} " if corpora else "")
        + r["arm"]
        + (f" ({r['scope']})" if scopes and is_searched(r["arm"]) else "")
        for r in summary
    ]
    width = max(len(n) for n in names)
    lines = ["", f"  {'arm':<{width}}  folds  UA % (mean ± std over folds)"]
    for name, r in zip(names, summary, strict=True):
        lines.append(f"  {name:<{width}}  {r['n_folds']:>5}  {_ua_with_seeds(r)}")
    named = json.loads((study_dir / CELLS_FILE).read_text()).get("primary")
    primary = next((c for c in comparisons(rows, named) if c.primary), None)
    lines.append("")
    if primary is None:
        lines.append(
            "  primary comparison: none named in the study file (every comparison is exploratory)"
            if named is None
            else "  primary comparison: no fold has finished cells of both arms"
        )
    else:
        c = primary
        p = "— (every fold tied)" if c.p_value is None else _p(c.p_value)
        lines.append(
            f"  primary comparison ({c.corpus}, {c.n} folds, unadjusted): {c.arm} against the "
            f"{c.label}: wins / ties / losses {_wtl(c)}, mean {_signed(c.mean_difference)} "
            f"points, 95 % CI {_ci(c)}, exact Wilcoxon p = {p}"
        )
        if _floor_words(c):
            lines.append(f"  ({_floor_words(c)})")
    return lines


def make_study_report(study_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write ``folds.csv``, ``report.csv``, ``report.md`` and the PNGs into ``out_dir``
    (default: ``study_dir``); returns their paths."""
    from emodarts_nni.study import plots

    study_dir = Path(study_dir)
    out = Path(out_dir) if out_dir is not None else study_dir
    cells = read_cells(study_dir)
    study = json.loads((study_dir / CELLS_FILE).read_text())
    name = study.get("name", study_dir.name)
    rows = fold_rows(study_dir)
    if not rows:
        raise EmodartsError(
            f"{study_dir}: no finished cell yet (no {RunFolder.METRICS} in any cell)"
        )
    summary = summary_rows(rows)
    primary = study.get("primary")
    compared = comparisons(rows, primary)
    baselines = [best_baseline(rows, corpus) for corpus in dict.fromkeys(r["corpus"] for r in rows)]
    text = markdown(
        name,
        summary,
        compared,
        len(cells),
        primary=primary,
        baselines=baselines,
        finished=len(rows),
    )
    flagged = [f"- **{row['cell']}**: {w}" for row in rows for w in row["warnings"]]
    if flagged:
        text += "\n".join(["", "## Warnings", "", *flagged, ""])
    chosen = chosen_cells(study_dir, rows)
    if chosen:
        text += "\n".join(
            [
                "",
                "## Most frequently chosen cells",
                "",
                markdown_table(["arm", "scope", "cell", "chosen", "of runs"], chosen),
                "",
            ]
        )
    pictures = {
        "boxes": plots.plot_fold_boxes(rows, out / "ua_boxes.png"),
        "scatter": plots.plot_study_scatter(summary, out / "accuracy_scatter.png"),
        "chosen": plots.plot_chosen_ops(study_dir, rows, out / "chosen_ops.png"),
    }
    pictures |= plots.plot_alpha_per_arm(study_dir, rows, out)
    drawn = {key: path for key, path in pictures.items() if path is not None}
    if drawn:
        text += "\n".join(["", "## Pictures", "", *(f"{line}\n" for line in _embedded(drawn))])
    reachable = any(c.result.can_reach_alpha for c in compared)
    text += "\n" + checklist(study_dir, study, rows, reachable=reachable)
    files = {
        "folds": write_csv(out / "folds.csv", FOLD_COLUMNS, rows, _csv_cell),
        "report_csv": write_csv(out / "report.csv", REPORT_COLUMNS, summary, _csv_cell),
        "report": atomic_write_text(out / "report.md", text),
    }
    return files | drawn


#: What each study picture shows (its alt text in report.md); α pictures are per arm.
PICTURE_CAPTIONS = {
    "boxes": "UA per fold and arm (one point per fold: the mean over its seeds)",
    "scatter": "mean UA against its spread over folds per arm; marker area: parameters",
    "chosen": "how often each operation was chosen, per searched arm and cell type",
}


def _embedded(drawn: Mapping[str, Path]) -> list[str]:
    """Markdown image lines for the pictures beside report.md (relative links)."""
    return [
        f"![{PICTURE_CAPTIONS.get(key, 'α per epoch, ' + path.stem.removeprefix('alpha_'))}]"
        f"({path.name})"
        for key, path in drawn.items()
    ]


__all__ = [
    "FOLD_COLUMNS",
    "REPORT_COLUMNS",
    "TRANSDUCTIVE",
    "chosen_cells",
    "console_summary",
    "fold_rows",
    "make_study_report",
    "markdown",
    "seed_spread",
    "summary_rows",
]
