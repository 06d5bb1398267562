"""Tables and pictures from finished runs: the last step of the data flow.

:func:`collect_runs` finds every run folder (a folder with a ``metrics.json``) below a
directory; :func:`summarise` groups them by corpus, strategy and scope into mean ± std
over folds; :func:`write_report` writes ``report.md``, ``summary.csv``, ``runs.csv`` and
``accuracy.png`` and, into each run folder, the run's pictures (:func:`render_run`).
``docs/report.md`` explains every file and picture.

Only the run folder's files are read (JSON and CSV, never pickles); nothing here imports
torch or NNI, so a report of a finished study is quick. A run whose files are corrupt is
skipped with a warning naming it; it never stops the report.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
from emodarts_nni.space import genotype
from emodarts_nni.space.architecture import readout_input_cell, readout_of

#: Pictures written into each run folder (their names belong to the run folder).
CONFUSION_PNG = RunFolder.CONFUSION_PNG
ALPHA_PNG = RunFolder.ALPHA_PNG
CURVES_PNG = RunFolder.CURVES_PNG
CELL_PNG = RunFolder.CELL_PNG
#: Files written into the report folder.
REPORT_MD, SUMMARY_CSV, RUNS_CSV, ACCURACY_PNG = (
    "report.md",
    "summary.csv",
    "runs.csv",
    "accuracy.png",
)

SUMMARY_COLUMNS = (
    "corpus", "strategy", "scope", "n", "folds", "ua_mean", "ua_std", "wa_mean", "wa_std",
    "macro_f1_mean", "parameters_mean", "search_seconds_mean", "retrain_seconds_mean",
)  # fmt: skip
RUN_COLUMNS = (
    "run", "corpus", "strategy", "scope", "fold", "seed", "test_groups", "ua", "wa", "macro_f1",
    "parameters", "search_seconds", "retrain_seconds", "best_epoch", "val_ua", "n_utterances",
)  # fmt: skip


@dataclass(frozen=True)
class RunRecord:
    """One finished run: its folder, ``metrics.json`` and (when there is one) ``architecture.json``."""

    run_dir: Path
    name: str
    metrics: dict[str, Any]
    architecture: dict[str, Any] | None = None

    def _provenance(self, key: str) -> Any:
        if self.architecture:
            provenance = self.architecture.get("provenance")
            if isinstance(provenance, Mapping) and provenance.get(key) is not None:
                return provenance[key]
            space = self.architecture.get("space")
            if key == "scope" and isinstance(space, Mapping):
                return space.get("scope")
        return None

    def _field(self, key: str) -> Any:
        value = self.metrics.get(key)
        return value if value is not None else self._provenance(key)

    @property
    def corpus(self) -> str:
        """Corpus kind (``iemocap``, ``synth``, ...) or ``unknown``."""
        return str(self._field("corpus") or "unknown")

    @property
    def strategy(self) -> str:
        """Search strategy (``darts``, ``random``, ...) or ``baseline``."""
        return str(self._field("strategy") or "unknown")

    @property
    def scope(self) -> str:
        """Search scope name (a scope file's stem), or the baseline's name."""
        scope = str(self._field("scope") or "unknown")
        return Path(scope).stem if scope.endswith((".yaml", ".yml")) else scope

    @property
    def fold(self) -> int | None:
        """The held-out fold, when recorded."""
        fold = number(self._field("fold"))
        return int(fold) if fold is not None else None

    def value(self, key: str) -> float | None:
        """A numeric metric (``ua``, ``wa``, ``parameters``, ...) or ``None``."""
        return number(self._field(key))


@dataclass
class Report:
    """What :func:`make_report` produced: files written, summary rows, runs, skipped runs."""

    files: dict[str, Path]
    summary: list[dict[str, Any]]
    records: list[RunRecord]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- reading
def _warn(message: str) -> None:
    print(f"emodarts: warning: {message}", file=sys.stderr)


def _read_json(path: Path) -> Any:
    """Parsed JSON; raises ``ValueError`` with a short reason when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} unreadable: {exc}") from None


def _check_metrics(metrics: Any) -> str | None:
    """Why ``metrics`` cannot be used, or ``None`` when it can."""
    if not isinstance(metrics, Mapping):
        return f"{RunFolder.METRICS} is not a JSON object"
    for key in ("ua", "wa"):
        value = number(metrics.get(key))
        if value is None or not 0.0 <= value <= 1.0:
            return (
                f"{RunFolder.METRICS}: {key!r} missing or not a fraction in [0, 1]: "
                f"{metrics.get(key)!r}"
            )
    return None


def _read_history(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of the run's ``history.csv``; ``[]`` (with a warning) if unreadable."""
    try:
        return RunFolder(run_dir).read_history()
    except EmodartsError as exc:
        _warn(f"{exc}; its curves and α are not drawn")
        return []


def _scan(directory: Path) -> tuple[list[RunRecord], list[tuple[Path, str]]]:
    """Records of every usable run below ``directory`` and the (folder, reason) of the rest."""
    records: list[RunRecord] = []
    skipped: list[tuple[Path, str]] = []
    paths = sorted(
        p
        for p in directory.rglob(RunFolder.METRICS)
        if not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    for path in paths:
        run_dir = path.parent
        try:
            metrics = _read_json(path)
        except ValueError as exc:
            reason = str(exc)
        else:
            reason = _check_metrics(metrics)
        if reason is not None:
            _warn(f"skipping run {run_dir}: {reason}")
            skipped.append((run_dir, reason))
            continue
        architecture = None
        if RunFolder(run_dir).architecture.is_file():
            try:
                architecture = _read_json(RunFolder(run_dir).architecture)
            except ValueError as exc:
                _warn(f"{run_dir}: {exc}; the run is reported without its architecture")
            if not isinstance(architecture, dict):
                architecture = None
        rel = run_dir.relative_to(directory).as_posix()
        name = rel if rel != "." else run_dir.resolve().name
        records.append(RunRecord(run_dir, name, dict(metrics), architecture))
    return records, skipped


def collect_runs(directory: str | os.PathLike) -> list[RunRecord]:
    """Every run folder with a usable ``metrics.json`` below ``directory`` (recursively).

    A run whose ``metrics.json`` is unreadable or lacks UA/WA is skipped with a warning
    on stderr naming the folder. A missing ``directory`` raises :class:`EmodartsError`.
    """
    return _scan(_existing_directory(directory))[0]


def _existing_directory(directory: str | os.PathLike) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise EmodartsError(f"not a directory: {path}")
    return path


# --------------------------------------------------------------------------- summary
def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _std(values: Iterable[float | None]) -> float | None:
    """Sample standard deviation (ddof 1) over folds; ``None`` for fewer than two values."""
    present = [v for v in values if v is not None]
    return float(np.std(present, ddof=1)) if len(present) > 1 else None


def _per_fold(runs: Sequence[RunRecord], key: str) -> list[float | None]:
    """``key`` per fold: the mean over the runs of one fold (a rerun or a retrain of the same
    fold is a repeat, not another sample); a run without a fold counts on its own."""
    by_fold: dict[Any, list[float | None]] = {}
    for i, r in enumerate(runs):
        by_fold.setdefault(r.fold if r.fold is not None else ("run", i), []).append(r.value(key))
    return [_mean(values) for values in by_fold.values()]


def summarise(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (corpus, strategy, scope): runs, folds, mean ± std of UA and WA, ...

    Metrics stay fractions (UA 0.7656, not 76.56). UA and WA are first averaged over the
    runs of each fold (reruns and retrains of one fold are repeats), then ``*_mean`` and
    ``*_std`` (sample standard deviation, ``None`` below two folds) are over folds; the
    other means are over runs and skip missing values (a baseline has no
    ``search_seconds``). Rows are sorted by the group key.
    """
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.corpus, record.strategy, record.scope), []).append(record)
    rows = []
    for (corpus, strategy, scope), runs in sorted(groups.items()):
        ua, wa = _per_fold(runs, "ua"), _per_fold(runs, "wa")
        rows.append({
            "corpus": corpus,
            "strategy": strategy,
            "scope": scope,
            "n": len(runs),
            "folds": sorted({r.fold for r in runs if r.fold is not None}),
            "ua_mean": _mean(ua),
            "ua_std": _std(ua),
            "wa_mean": _mean(wa),
            "wa_std": _std(wa),
            "macro_f1_mean": _mean(r.value("macro_f1") for r in runs),
            "parameters_mean": _mean(r.value("parameters") for r in runs),
            "search_seconds_mean": _mean(r.value("search_seconds") for r in runs),
            "retrain_seconds_mean": _mean(r.value("retrain_seconds") for r in runs),
        })  # fmt: skip
    return rows


# --------------------------------------------------------------------------- formatting
def _seconds(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else MISSING


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as the Markdown table printed by ``emodarts report``."""
    header = ("corpus", "strategy", "scope", "runs", "folds (ids)", "UA %", "WA %",
              "macro-F1 %", "params", "search s", "retrain s")  # fmt: skip
    rows = [
        (
            r["corpus"],
            r["strategy"],
            r["scope"],
            r["n"],
            f"{len(r['folds'])} ({', '.join(str(f) for f in r['folds'])})"
            if r["folds"]
            else MISSING,
            format_percent_pm(r["ua_mean"], r["ua_std"]),
            format_percent_pm(r["wa_mean"], r["wa_std"]),
            format_percent(r["macro_f1_mean"]),
            format_count(r["parameters_mean"]),
            _seconds(r["search_seconds_mean"]),
            _seconds(r["retrain_seconds_mean"]),
        )  # fmt: skip
        for r in summary
    ]
    return markdown_table(header, rows)


def _genotype(architecture: Mapping[str, Any]) -> list[str]:
    """``normal: 0 ← sep_conv_3x3(c_{k-1}) + max_pool_3x3(c_{k-2}); 1 ← ...`` per cell kind."""
    lines = []
    for kind in genotype.cell_kinds(architecture):
        edges = genotype.cell_edges(architecture, kind)
        first = min(edge.node for edge in edges)
        nodes: dict[int, list[str]] = {}
        for edge in edges:
            source = edge.source
            name = ("c_{k-2}", "c_{k-1}")[source] if source < first else str(source - first)
            nodes.setdefault(edge.node - first, []).append(f"{edge.op}({name})")
        lines.append(
            f"{kind}: " + "; ".join(f"{n} ← {' + '.join(ops)}" for n, ops in nodes.items())
        )
    return lines


def _link(target: Path, start: Path) -> str:
    return quote(Path(os.path.relpath(target, start)).as_posix())


# --------------------------------------------------------------------------- writing
def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 6)
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return value


def write_csv(
    path: Path,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    cell: Callable[[Any], Any] = _csv_value,
) -> Path:
    """Write ``rows`` (only ``columns``, in order) as CSV atomically; ``cell`` formats a value
    (default: blanks for None/NaN, floats to 6 decimals, lists space-separated)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: cell(row.get(k)) for k in columns})
    return atomic_write_text(path, buffer.getvalue())


def run_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """What went wrong in a run that its UA alone hides, from its ``metrics.json``: a
    single-class (degenerate) model on validation or test, a collapsed search cell, a
    search stopped early by DARTS+'s rule. Empty for a healthy run or an older file."""
    out = []
    for part, key in (("test", "single_class"), ("validation", "val_single_class")):
        label = metrics.get(key)
        if label:
            out.append(f"single-class model: predicts {label!r} for nearly every {part} utterance")
    collapsed = metrics.get("collapsed")
    if isinstance(collapsed, Mapping):
        cells = [str(cell) for cell, flag in collapsed.items() if flag]
        if cells:
            out.append(f"search collapsed: {', '.join(cells)} cell mostly parameter-free ops")
    stop = metrics.get("search_stopped_early")
    if stop:
        out.append(f"search stopped early: {stop}")
    return out


def _run_row(record: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run": record.name,
        "corpus": record.corpus,
        "strategy": record.strategy,
        "scope": record.scope,
        "fold": record.fold,
        "seed": record.metrics.get("seed", record._provenance("seed")),
        "test_groups": record.metrics.get("test_groups") or record._provenance("test_groups"),
    }
    for key in RUN_COLUMNS[7:]:
        row[key] = record.value(key)
    recall = record.metrics.get("per_class_recall")
    if isinstance(recall, Mapping):
        for cls, value in recall.items():
            row[f"recall_{cls}"] = number(value)
    return row


def render_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Draw one run's pictures into ``out_dir`` (default: its own folder); returns the paths.

    ``confusion_matrix.png`` (from ``metrics.json``), ``curves.png`` (losses and UA from
    ``history.csv``), ``alpha.png`` (α per op over search epochs, differentiable
    strategies only) and ``cell_<kind>.png`` for each cell of ``architecture.json``.
    Whatever is missing or unreadable is skipped with a warning; a folder that does not
    exist raises :class:`EmodartsError`.
    """
    from emodarts_nni.reporting import plots  # matplotlib: only when pictures are drawn

    run_dir = _existing_directory(run_dir)
    written: list[Path] = []
    metrics: Any = {}
    folder = RunFolder(run_dir)
    pictures = RunFolder(out_dir) if out_dir is not None else folder
    if folder.metrics.is_file():
        try:
            metrics = _read_json(folder.metrics)
            if not isinstance(metrics, Mapping):
                raise ValueError(f"{RunFolder.METRICS} is not a JSON object")
            matrix, names = metrics.get("confusion_matrix"), metrics.get("class_names")
            if matrix is not None and names is not None:
                ua, wa = number(metrics.get("ua")), number(metrics.get("wa"))
                title = (
                    f"{run_dir.name}\nUA {format_percent(ua)} %  WA {format_percent(wa)} %"
                    if ua is not None
                    else None
                )
                path = plots.plot_confusion_matrix(
                    matrix, names, pictures.picture(CONFUSION_PNG), title=title
                )
                written.append(path)
        except (ValueError, TypeError) as exc:
            _warn(f"{run_dir}: no confusion matrix drawn ({exc})")
            metrics = {}

    history = _read_history(run_dir)
    best = number(metrics.get("best_epoch"))
    curves = plots.plot_training_curves(
        history, pictures.picture(CURVES_PNG), best_epoch=int(best) if best is not None else None
    )
    alpha = plots.plot_alpha_evolution(history, pictures.picture(ALPHA_PNG))
    written += [path for path in (curves, alpha) if path is not None]

    arch_path = folder.architecture
    if arch_path.is_file():
        try:
            architecture = _read_json(arch_path)
            if not isinstance(architecture, Mapping):
                raise ValueError(f"{RunFolder.ARCHITECTURE} is not a JSON object")
            space = architecture.get("space")
            feeds = readout_input_cell(space) if isinstance(space, Mapping) else None
            for kind in genotype.cell_kinds(architecture):
                readout = readout_of(architecture) if kind == feeds else None
                written.append(
                    plots.plot_cell(
                        architecture, kind, pictures.picture(CELL_PNG, kind=kind), readout
                    )
                )
        except (ValueError, EmodartsError) as exc:
            _warn(f"{run_dir}: no cell pictures drawn ({exc})")
    return written


def make_report(directory: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Report:
    """:func:`write_report`, returning the summary rows, records and skipped runs as well."""
    from emodarts_nni.reporting import plots  # matplotlib: only when pictures are drawn

    directory = _existing_directory(directory)
    records, skipped = _scan(directory)
    if not records:
        raise EmodartsError(
            f"no finished runs (folders with a usable {RunFolder.METRICS}) below {directory}"
        )
    out = Path(out_dir) if out_dir is not None else directory
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    pictures: dict[str, list[Path]] = {}
    for record in records:
        try:
            own = out / record.name if out_dir is not None else None  # --out: all files there
            pictures[record.name] = render_run(record.run_dir, own)
        except OSError as exc:  # e.g. a read-only run folder: the tables still get written
            _warn(f"{record.run_dir}: pictures not written ({exc})")
            pictures[record.name] = []
        for path in pictures[record.name]:
            files[f"{record.name}/{path.stem}"] = path

    summary = summarise(records)
    runs = [_run_row(r) for r in records]
    recall_columns = sorted({k for row in runs for k in row if k.startswith("recall_")})
    files["summary"] = write_csv(out / SUMMARY_CSV, SUMMARY_COLUMNS, summary)
    files["runs"] = write_csv(out / RUNS_CSV, (*RUN_COLUMNS, *recall_columns), runs)
    accuracy = plots.plot_accuracy_scatter(summary, out / ACCURACY_PNG)
    if accuracy is not None:
        files["accuracy"] = accuracy
    markdown = _markdown(directory, out, summary, records, runs, pictures, accuracy, skipped)
    files["report"] = atomic_write_text(out / REPORT_MD, markdown)
    return Report(files=files, summary=summary, records=records, skipped=skipped)


def write_report(
    directory: str | os.PathLike, out_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """Write the report of every run below ``directory``; returns ``{name: path}``.

    Into ``out_dir`` (default ``directory``): ``report.md`` (summary table, per-run table,
    pictures as relative links), ``summary.csv``, ``runs.csv`` and ``accuracy.png``. The
    pictures of :func:`render_run` go into each run folder, or with ``out_dir`` into
    ``out_dir/<run>`` (nothing is written into a run folder then). Keys are ``report``, ``summary``,
    ``runs``, ``accuracy`` and ``<run>/<picture>`` (e.g. ``fold0/confusion_matrix``).
    A directory without runs raises :class:`EmodartsError` naming it.
    """
    return make_report(directory, out_dir).files


def _markdown(
    directory: Path,
    out: Path,
    summary: list[dict[str, Any]],
    records: list[RunRecord],
    runs: list[dict[str, Any]],
    pictures: dict[str, list[Path]],
    accuracy: Path | None,
    skipped: list[tuple[Path, str]],
) -> str:
    parts = [
        "# emoDARTS report",
        "",
        f"{len(records)} run(s) below `{directory}`"
        + (f"; {len(skipped)} skipped (see the end)." if skipped else "."),
        "UA = unweighted accuracy (mean per-class recall), WA = accuracy; mean ± sample std "
        "over the runs (folds) of a group. How to read the pictures: `docs/report.md`.",
        "",
        "## Summary",
        "",
        summary_table(summary),
        "",
    ]
    if accuracy is not None:
        parts += [f"![mean UA against its std over folds]({_link(accuracy, out)})", ""]
    header = ("run", "corpus", "strategy", "scope", "fold", "seed", "UA %", "WA %",
              "macro-F1 %", "params", "best epoch")  # fmt: skip
    table = []
    for row in runs:
        best = row.get("best_epoch")
        table.append((
            row["run"], row["corpus"], row["strategy"], row["scope"],
            row["fold"] if row["fold"] is not None else MISSING,
            row["seed"] if row["seed"] is not None else MISSING,
            format_percent(row["ua"]), format_percent(row["wa"]), format_percent(row["macro_f1"]),
            format_count(row["parameters"]), int(best) if best is not None else MISSING,
        ))  # fmt: skip
    parts += ["## Runs", "", markdown_table(header, table), ""]
    flagged = [(r.name, w) for r in records for w in run_warnings(r.metrics)]
    if flagged:
        parts += ["## Warnings", ""]
        parts += [f"- **{name}**: {warning}" for name, warning in flagged]
        parts.append("")
    for record in records:
        parts += [f"### {record.name}", ""]
        if record.architecture:
            try:
                genotype = _genotype(record.architecture)
            except EmodartsError:
                genotype = []
            if genotype:
                parts += ["```", *genotype, "```", ""]
        for path in pictures.get(record.name, []):
            parts += [f"![{path.stem}]({_link(path, out)})", ""]
    if skipped:
        parts += ["## Skipped runs", ""]
        parts += [f"- `{path}`: {reason}" for path, reason in skipped]
        parts.append("")
    return "\n".join(parts)
