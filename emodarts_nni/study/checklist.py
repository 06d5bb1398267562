"""The NAS best-practices checklist that ends every study report, filled in from the study's
own records (Lindauer & Hutter, "Best practices for scientific research on neural
architecture search", JMLR 2020, arXiv:1909.02453).

Every answer is computed from the study folder: the cells' resolved ``config.yaml`` (same
pipeline?), ``environment.json`` (library versions), ``metrics.json`` (wall time, the
classical control's choice of C), ``study.json`` (cells, seeds, random architectures, the
code's commit) and ``study.yaml`` (trial concurrency). Nothing here is boilerplate: an item
the records cannot answer says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.common.units import MISSING
from emodarts_nni.pipeline.runfolder import RESULT_NEUTRAL_KEYS, RunFolder
from emodarts_nni.study.arms import (
    BASELINE_PREFIX,
    CLASSICAL_ARM,
    RANDOM_ARM,
    RANDOM_KIND,
    is_searched,
)

#: Config sections every arm must share for the comparison to be fair (search and space
#: keys differ between arms by design).
PIPELINE_SECTIONS = ("corpus", "features", "splits", "retrain", "trainer")
#: The arm that samples architectures at random with the supernet (a one-shot random search).
RANDOM_ONESHOT = "random-oneshot"
#: The paper the checklist follows.
SOURCE = "Lindauer & Hutter, JMLR 2020, arXiv:1909.02453"


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any] | None:
    from emodarts_nni.common.yaml_loader import parse_yaml

    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except Exception:  # a missing or damaged file: the item says the record is missing
        return None
    return data if isinstance(data, dict) else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _join(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


# --------------------------------------------------------------------------- items
def same_pipeline(study_dir: Path, rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> str:
    """Whether every finished cell's resolved config agrees on the pipeline sections,
    apart from the grid's axes."""
    configs = {}
    for row in rows:
        config = _read_yaml(RunFolder(study_dir / row["run_dir"]).config)
        if config is not None:
            configs[row["cell"]] = {
                key: value
                for key, value in _flatten(config).items()
                if key.split(".")[0] in PIPELINE_SECTIONS
                and not key.startswith(RESULT_NEUTRAL_KEYS)
                and key not in axes
            }
    if not configs:
        return f"unknown: no finished cell has a readable `{RunFolder.CONFIG}`"
    keys = sorted({key for config in configs.values() for key in config})
    differing = []
    for key in keys:
        values = Counter(json.dumps(config.get(key), default=str) for config in configs.values())
        if len(values) > 1:
            shown = "; ".join(f"{value} in {n} cells" for value, n in values.most_common())
            differing.append(f"`{key}` ({shown})")
    missing = len(rows) - len(configs)
    unread = (
        f"; {missing} finished cell(s) have no readable `{RunFolder.CONFIG}`" if missing else ""
    )
    shown_axes = [a for a in axes if a.split(".")[0] in PIPELINE_SECTIONS]
    varied = f" apart from the grid's {_join(f'`{a}`' for a in shown_axes)}" if shown_axes else ""
    classical = (
        "; the classical control uses only the corpus, features and splits (no network)"
        if any(r["arm"] == CLASSICAL_ARM for r in rows)
        else ""
    )
    if differing:
        return f"no: across the {len(configs)} cells' `{RunFolder.CONFIG}`, " + (
            "; ".join(differing) + unread
        )
    return (
        f"yes: the {len(configs)} finished cells' resolved `{RunFolder.CONFIG}` agree on every "
        f"{', '.join(PIPELINE_SECTIONS)} key{varied}; search and space keys differ by arm "
        f"by design{classical}{unread}"
    )


def same_versions(study_dir: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """Whether the cells' recorded library versions and platform agree."""
    found: dict[str, Counter] = {}
    recorded = 0
    for row in rows:
        environment = _read_json(RunFolder(study_dir / row["run_dir"]).environment)
        versions = (environment or {}).get("versions")
        if not isinstance(versions, Mapping):
            continue
        recorded += 1
        for name, version in versions.items():
            found.setdefault(str(name), Counter())[str(version)] += 1
    if not recorded:
        return f"unknown: no finished cell has a readable `{RunFolder.ENVIRONMENT}`"
    differing = {name: c for name, c in found.items() if len(c) > 1 or sum(c.values()) < recorded}
    where = (
        f"`{RunFolder.ENVIRONMENT}` of {recorded} cells (written when the study folder was "
        "laid out, by the launching machine); the hardware itself is not recorded"
    )
    if differing:
        shown = "; ".join(
            f"{name}: " + ", ".join(f"{v} ({n})" for v, n in c.most_common())
            for name, c in sorted(differing.items())
        )
        return f"no: {shown} — {where}"
    shown = ", ".join(
        f"{name} {next(iter(c))}" for name, c in found.items() if name not in ("platform",)
    )
    platform = next(iter(found["platform"])) if "platform" in found else MISSING
    return f"yes: {shown}; platform {platform} — {where}"


def random_control(cells: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> str:
    """The random-search controls the study has."""
    per_point = Counter(
        (c["parameters"].get("scope"), c["parameters"].get("fold"), c["parameters"].get("seed"))
        for c in cells
        if c.get("kind") == RANDOM_KIND
    )
    parts = []
    if per_point:
        n = max(per_point.values())
        finished = sum(1 for r in rows if r["arm"] == RANDOM_ARM)
        parts.append(
            f"{n} random architecture{'s' if n != 1 else ''} per fold, scope and seed ({finished} of "
            f"{sum(per_point.values())} cells finished), sampled from the searched space with "
            "seed 1000·seed + r + 1 (the same ones on every fold) and retrained like the "
            "searched ones"
        )
    if any(r["arm"] == RANDOM_ONESHOT for r in rows):
        parts.append(f"the `{RANDOM_ONESHOT}` arm (random sampling with the supernet)")
    return "yes: " + "; ".join(parts) if parts else "no random-search control in this study"


def seeds_per_fold(rows: Sequence[Mapping[str, Any]]) -> str:
    """The seeds each arm ran on each fold."""
    groups: dict[tuple[str, str], dict[int, set[int]]] = {}
    for r in rows:
        groups.setdefault((r["arm"], r["scope"]), {}).setdefault(int(r["fold"]), set()).add(
            int(r["seed"])
        )
    patterns = {
        key: {tuple(sorted(seeds)) for seeds in folds.values()} for key, folds in groups.items()
    }
    folds = sorted({int(r["fold"]) for r in rows})
    note = "pairs are folds; a fold's value is the mean over its seeds"
    every = {p for ps in patterns.values() for p in ps}
    if len(every) == 1 and all(len(f) == len(folds) for f in groups.values()):
        seeds = next(iter(every))
        return (
            f"{len(seeds)} (seed {_join(seeds)}) on each of the {len(folds)} folds, every arm; "
            + note
        )
    shown = "; ".join(
        f"{arm}"
        + ("" if scope == "-" else f" ({scope})")
        + ": "
        + ", ".join(f"fold {f}: {_join(sorted(s))}" for f, s in sorted(by_fold.items()))
        for (arm, scope), by_fold in groups.items()
    )
    return f"not the same for every arm and fold — {shown}; {note}"


def wall_times(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Per (corpus, arm, scope): cells, mean search s, mean retrain s, total s (all cells)."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["corpus"], r["arm"], r["scope"]), []).append(r)

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known and len(known) == len(values) else None

    out = []
    for (corpus, arm, scope), members in groups.items():
        search = mean([r.get("search_seconds") for r in members])
        retrain = mean([r.get("retrain_seconds") for r in members])
        total = None if search is None or retrain is None else (search + retrain) * len(members)
        out.append(
            [
                corpus,
                arm,
                scope,
                len(members),
                MISSING if search is None else f"{search:,.0f}",
                MISSING if retrain is None else f"{retrain:,.0f}",
                MISSING if total is None else f"{total:,.0f}",
            ]
        )
    return out


def concurrency(study_dir: Path) -> str:
    """How many cells ran at once (``study.yaml``'s ``training_service.trial_concurrency``)."""
    study = _read_yaml(study_dir / "study.yaml")
    if study is None:
        return "the study file (`study.yaml`) is not in the study folder: concurrency unknown"
    service = study.get("training_service") or {}
    n = service.get("trial_concurrency", 1) if isinstance(service, Mapping) else 1
    if n == 1:
        return "cells ran one at a time (`trial_concurrency: 1`)"
    return f"`trial_concurrency: {n}`: up to {n} cells shared the machine, and so their timings"


def hyper_parameters(study_dir: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """Where every hyper-parameter is recorded."""
    configs = sum(RunFolder(study_dir / r["run_dir"]).config.is_file() for r in rows)
    study_file = (
        "`study.yaml` (the study file as given)"
        if (study_dir / "study.yaml").is_file()
        else "no `study.yaml` in the study folder"
    )
    return (
        f"{study_file}; each cell's resolved `<cell>/{RunFolder.CONFIG}` ({configs} of "
        f"{len(rows)} finished cells have one); searched and random architectures in "
        f"`<cell>/{RunFolder.ARCHITECTURE}`"
    )


def _by_value(item: tuple[str, int]) -> float:
    return float(item[0])


def tuning(study_dir: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """How hyper-parameters were chosen, arm by arm."""
    parts = []
    classical = [r for r in rows if r["arm"] == CLASSICAL_ARM]
    if classical:
        chosen, candidates = [], set()
        for r in classical:
            metrics = _read_json(RunFolder(study_dir / r["run_dir"]).metrics) or {}
            chosen.append(metrics.get("regularisation_c"))
            candidates |= set(metrics.get("validation_ua_by_c") or {})
        picked = Counter(f"{c:g}" for c in chosen if c is not None)
        if candidates and picked:
            shown = ", ".join(f"{c} ×{n}" for c, n in sorted(picked.items(), key=_by_value))
            parts.append(
                f"classical control: C chosen per cell on validation UA from {len(candidates)} "
                f"candidates (chosen: {shown})"
            )
        else:
            parts.append(
                f"classical control: its choice of C is not recorded in `{RunFolder.METRICS}`"
            )
    if any(r["arm"].startswith(BASELINE_PREFIX) for r in rows):
        parts.append(
            "baselines: not tuned (the cells' retrain settings); the best one chosen on "
            "validation UA"
        )
    if any(is_searched(r["arm"]) or r["arm"] == RANDOM_ARM for r in rows):
        parts.append("search and retrain settings: as configured, not tuned by this study")
    return "; ".join(parts)


def code_record(
    study: Mapping[str, Any], study_dir: Path, rows: Sequence[Mapping[str, Any]]
) -> str:
    """The code that ran: the git commit(s) ``emodarts study`` recorded, else the version."""
    launches = [c for c in study.get("code") or [] if isinstance(c, Mapping)]
    commits = [c for c in launches if c.get("git_commit")]
    if commits:
        shown = "; ".join(
            f"`{c['git_commit']}`"
            + (" with uncommitted changes to tracked files" if c.get("git_dirty") else "")
            + (f" (package {c['package_version']})" if c.get("package_version") else "")
            for c in commits
        )
        several = f"{len(launches)} launches on different code: " if len(launches) > 1 else ""
        return f"git commit {several}{shown} — recorded in `study.json` by `emodarts study`"
    versions = Counter()
    for r in rows:
        environment = _read_json(RunFolder(study_dir / r["run_dir"]).environment) or {}
        versions[str((environment.get("versions") or {}).get("emodarts-nni", MISSING))] += 1
    if launches:
        why = "not run from a git checkout"
    else:
        why = "`study.json` records none (a study laid out before commits were recorded)"
    shown = ", ".join(f"{v} ({n} cells)" for v, n in versions.most_common()) or MISSING
    return f"no git commit: {why}; package version emodarts-nni {shown} from `environment.json`"


def not_done(
    rows: Sequence[Mapping[str, Any]],
    reachable: bool,
    transductive: bool,
    scopes: int,
) -> str:
    """What this study does not do, from its own records."""
    items = []
    if any(r["arm"].startswith(BASELINE_PREFIX) for r in rows):
        items.append("no hyper-parameter tuning of the baselines")
    corpora = sorted({r["corpus"] for r in rows})
    if len(corpora) == 1:
        items.append(f"one corpus ({corpora[0]})")
    seeds = max(
        len({r["seed"] for r in rows if (r["arm"], r["scope"], r["fold"]) == key})
        for key in {(r["arm"], r["scope"], r["fold"]) for r in rows}
    )
    if seeds == 1:
        items.append("one seed per fold: seed-to-seed variance is not measured")
    if not reachable:
        items.append("too few non-tied folds for any comparison to reach p < 0.05")
    if scopes <= 1:
        items.append("no ablation (one search scope)")
    if transductive:
        items.append("speaker normalisation uses the test speakers' unlabelled utterances")
    items.append("no comparison of accuracy over search time (anytime performance)")
    items.append("no tabular or surrogate NAS benchmark")
    return "; ".join(items)


def checklist(
    study_dir: Path,
    study: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    reachable: bool,
) -> str:
    """The report's last section: the checklist and the wall time per arm, as Markdown.

    ``study`` is ``study.json``; ``reachable``: whether any comparison can reach p < 0.05.
    """
    from emodarts_nni.reporting.runs import markdown_table

    cells = study.get("cells") or []
    fixed = {"cell", "arm", "corpus", "fold", "scope", "strategy", "seed"}
    axes = sorted(
        {key for c in cells for key in c.get("parameters", {}) if key not in fixed}
        | {"splits.fold"}
    )
    transductive = any(r.get("normalisation") == "speaker" for r in rows)
    scopes = len({r["scope"] for r in rows if is_searched(r["arm"])})
    items = [
        (
            "same pipeline (data, splits, features, retraining) for every arm",
            same_pipeline(study_dir, rows, axes),
        ),
        ("same library versions and platform", same_versions(study_dir, rows)),
        ("random-search control", random_control(cells, rows)),
        ("repeated runs: seeds per fold", seeds_per_fold(rows)),
        (
            "end-to-end wall time per arm (search + retrain)",
            f"in the table below, from each cell's `{RunFolder.METRICS}`; {concurrency(study_dir)}",
        ),
        ("every hyper-parameter reported", hyper_parameters(study_dir, rows)),
        ("how hyper-parameters were tuned", tuning(study_dir, rows)),
        ("code", code_record(study, study_dir, rows)),
        ("not done", not_done(rows, reachable, transductive, scopes)),
    ]
    return "\n".join(
        [
            "## NAS best-practices checklist",
            "",
            f"After {SOURCE}; every answer is computed from this study's records.",
            "",
            markdown_table(["best practice", "this study"], items),
            "",
            "Wall time per arm (seconds; search 0 for controls that do not search):",
            "",
            markdown_table(
                [
                    "corpus",
                    "arm",
                    "scope",
                    "cells",
                    "search s / cell",
                    "retrain s / cell",
                    "total s",
                ],
                wall_times(rows),
            ),
            "",
        ]
    )


__all__ = [
    "PIPELINE_SECTIONS",
    "checklist",
    "code_record",
    "hyper_parameters",
    "not_done",
    "random_control",
    "same_pipeline",
    "same_versions",
    "seeds_per_fold",
    "tuning",
    "wall_times",
]
