"""``emodarts report``: collecting run folders, mean ± std over folds, pictures, CLI."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import pytest

from emodarts_nni.cli import report as cli_report
from emodarts_nni.common.errors import ArchitectureError, EmodartsError
from emodarts_nni.reporting import plots
from emodarts_nni.reporting.runs import (
    collect_runs,
    render_run,
    summarise,
    summary_table,
    write_report,
)

CLASSES = ["neutral", "happy", "sad", "angry"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ARCHITECTURE = {
    "normal/op_2_0": "sep_conv_3x3", "normal/input_2_0": [1],
    "normal/op_2_1": "max_pool_3x3", "normal/input_2_1": [0],
    "normal/op_3_0": "dil_conv_3x3", "normal/input_3_0": [2],
    "normal/op_3_1": "skip_connect", "normal/input_3_1": [0],
    "reduce/op_2_0": "avg_pool_3x3", "reduce/input_2_0": [0],
    "reduce/op_2_1": "avg_pool_3x3", "reduce/input_2_1": [0],
    "reduce/op_3_0": "sep_conv_5x5", "reduce/input_3_0": [1],
    "reduce/op_3_1": "conv_7x1_1x7", "reduce/input_3_1": [2],
    "seq/op_2_0": "lstm_2", "seq/input_2_0": [1],
    "seq/op_2_1": "lstm_att_1", "seq/input_2_1": [0],
    "seq/op_3_0": "rnn_1", "seq/input_3_0": [2],
    "seq/op_3_1": "skip_connect", "seq/input_3_1": [1],
}  # fmt: skip
CNN_OPS = ["sep_conv_3x3", "max_pool_3x3", "skip_connect", "none"]
SEQ_OPS = ["lstm_2", "rnn_1", "none"]


def _history(epochs: int, alpha: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for stage in ("search", "retrain"):
        for epoch in range(epochs):
            row: dict[str, object] = {
                "stage": stage,
                "epoch": epoch,
                "train_loss": 1.4 - 0.1 * epoch,
                "val_ua": 0.3 + 0.05 * epoch,
                "val_wa": 0.3 + 0.05 * epoch,
                "val_loss": 1.3 - 0.1 * epoch,
            }
            if alpha and stage == "search":
                for cell, ops in (("normal", CNN_OPS), ("reduce", CNN_OPS), ("seq", SEQ_OPS)):
                    for edge in ("2_0", "2_1", "3_0"):
                        weights = [1.0 + (epoch if i == 0 else 0) for i in range(len(ops))]
                        for op, w in zip(ops, weights, strict=True):
                            row[f"alpha/{cell}/{edge}/{op}"] = w / sum(weights)
            rows.append(row)
    return rows


def make_run(
    root: Path,
    name: str,
    *,
    ua: float,
    wa: float,
    fold: int,
    strategy: str = "darts",
    scope: str = "emodarts",
    corpus: str = "synth",
    alpha: bool = True,
) -> Path:
    """A finished run folder written file by file, as ``pipeline/run.py`` lays it out."""
    run = root / name
    run.mkdir(parents=True)
    baseline = strategy == "baseline"
    metrics = {
        "ua": ua, "wa": wa, "macro_f1": ua - 0.01,
        "per_class_recall": dict(zip(CLASSES, [ua, ua, ua, ua], strict=True)),
        "confusion_matrix": [[8, 1, 1, 0], [2, 6, 1, 1], [0, 1, 9, 0], [1, 0, 2, 7]],
        "class_names": CLASSES, "n_utterances": 40, "parameters": 35_019 if baseline else 417_000,
        "search_seconds": None if baseline else 120.0, "retrain_seconds": 60.0,
        "best_epoch": 2, "val_ua": ua, "fold": fold, "test_groups": [f"Session{fold + 1}"],
        "strategy": strategy, "scope": scope, "corpus": corpus, "seed": 0,
    }  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "config.yaml").write_text("name: test\n")
    if not baseline:
        doc = {
            "format": "emodarts-architecture/1",
            "space": {"scope": scope},
            "architecture": ARCHITECTURE,
            "provenance": {"strategy": strategy, "seed": 0, "corpus": corpus, "fold": fold},
        }
        (run / "architecture.json").write_text(json.dumps(doc))
    rows = _history(3, alpha=alpha and not baseline)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with (run / "history.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (run / "predictions.csv").write_text("path,speaker,session,label,predicted\n")
    return run


def make_study(root: Path) -> Path:
    """Two DARTS folds and one baseline run (nested one level deeper)."""
    make_run(root, "darts-emodarts-fold0", ua=0.70, wa=0.72, fold=0)
    make_run(root, "darts-emodarts-fold1", ua=0.60, wa=0.64, fold=1)
    make_run(
        root,
        "nested/baseline-cnn-fold0",
        ua=0.50,
        wa=0.51,
        fold=0,
        strategy="baseline",
        scope="cnn",
    )
    return root


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return make_study(tmp_path / "study")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """One full report (the pictures are the slow part), shared by the tests reading it."""
    root = make_study(tmp_path_factory.mktemp("reported") / "study")
    return root, write_report(root)


@pytest.fixture
def small_study(tmp_path: Path) -> Path:
    """A single baseline run: two cheap pictures."""
    make_run(tmp_path / "small", "baseline-cnn_lstm-fold2", ua=0.5, wa=0.5, fold=2,
             strategy="baseline", scope="cnn_lstm")  # fmt: skip
    return tmp_path / "small"


def assert_png(path: Path, min_bytes: int = 5_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"


def test_runs_of_one_fold_are_repeats_not_folds(tmp_path: Path):
    """Issue 22: a run and a retrain of fold 0 read "runs 2 | folds 0 | 78.12 ± 0.00"; they
    are one fold, averaged, with no spread over folds to show."""
    make_run(tmp_path, "darts-emodarts-fold0", ua=0.70, wa=0.72, fold=0)
    make_run(tmp_path, "retrain-of-fold0", ua=0.80, wa=0.82, fold=0)
    (row,) = summarise(collect_runs(tmp_path))
    assert row["n"] == 2 and row["folds"] == [0]
    assert row["ua_mean"] == pytest.approx(0.75) and row["ua_std"] is None
    assert "| synth | darts | emodarts | 2 | 1 (0) | 75.00 | 77.00 |" in summary_table([row])


def test_collect_finds_runs_recursively(study: Path):
    records = collect_runs(study)
    assert [r.name for r in records] == [
        "darts-emodarts-fold0",
        "darts-emodarts-fold1",
        "nested/baseline-cnn-fold0",
    ]
    assert records[2].strategy == "baseline" and records[2].scope == "cnn"
    assert records[0].fold == 0 and records[0].architecture is not None


def test_summary_is_mean_and_sample_std_over_folds(study: Path):
    rows = {(r["strategy"], r["scope"]): r for r in summarise(collect_runs(study))}
    darts = rows[("darts", "emodarts")]
    assert darts["n"] == 2 and darts["folds"] == [0, 1]
    assert darts["ua_mean"] == pytest.approx(0.65)
    assert darts["ua_std"] == pytest.approx(math.sqrt(((0.05**2) * 2) / 1))  # ddof 1
    assert darts["wa_mean"] == pytest.approx(0.68)
    assert darts["wa_std"] == pytest.approx(math.sqrt(0.04**2 * 2))
    assert darts["macro_f1_mean"] == pytest.approx(0.64)
    assert darts["parameters_mean"] == 417_000
    assert darts["search_seconds_mean"] == 120.0
    baseline = rows[("baseline", "cnn")]
    assert baseline["n"] == 1 and baseline["ua_std"] is None
    assert baseline["search_seconds_mean"] is None  # baselines do not search


def test_report_files_default_to_the_runs_directory(reported: tuple[Path, dict[str, Path]]):
    root, files = reported
    assert files["report"] == root / "report.md"
    for key in ("summary", "runs", "accuracy"):
        assert files[key].parent == root
    assert not list(root.glob(".*"))  # no temp files left


def test_pictures_are_valid_pngs_in_each_run_folder(reported: tuple[Path, dict[str, Path]]):
    root, files = reported
    assert_png(files["accuracy"])
    run0 = root / "darts-emodarts-fold0"
    for name in ("confusion_matrix", "alpha", "curves", "cell_normal", "cell_reduce", "cell_seq"):
        assert_png(run0 / f"{name}.png")
        assert files[f"darts-emodarts-fold0/{name}"] == run0 / f"{name}.png"
    assert not list(run0.glob(".*"))
    baseline = root / "nested" / "baseline-cnn-fold0"
    assert_png(baseline / "confusion_matrix.png")
    assert_png(baseline / "curves.png")
    assert not (baseline / "alpha.png").exists() and not list(baseline.glob("cell_*.png"))


def test_markdown_has_the_summary_runs_and_picture_links(reported: tuple[Path, dict[str, Path]]):
    _, files = reported
    markdown = files["report"].read_text()
    assert "| synth | darts | emodarts | 2 | 2 (0, 1) | 65.00 ± 7.07 | 68.00 ± 5.66 |" in markdown
    assert "| synth | baseline | cnn | 1 | 1 (0) | 50.00 | 51.00 |" in markdown
    assert "| darts-emodarts-fold1 | synth | darts | emodarts | 1 | 0 | 60.00 | 64.00 |" in markdown
    assert "![confusion_matrix](darts-emodarts-fold0/confusion_matrix.png)" in markdown
    assert "![cell_seq](darts-emodarts-fold0/cell_seq.png)" in markdown
    assert "![mean UA against its std over folds](accuracy.png)" in markdown
    assert "normal: 0 ← sep_conv_3x3(c_{k-1}) + max_pool_3x3(c_{k-2})" in markdown


def test_csv_tables(reported: tuple[Path, dict[str, Path]]):
    _, files = reported
    with files["summary"].open() as fh:
        summary = list(csv.DictReader(fh))
    assert [(r["strategy"], r["scope"], r["n"]) for r in summary] == [
        ("baseline", "cnn", "1"),
        ("darts", "emodarts", "2"),
    ]
    assert float(summary[1]["ua_mean"]) == pytest.approx(0.65) and summary[0]["ua_std"] == ""
    with files["runs"].open() as fh:
        runs = list(csv.DictReader(fh))
    assert len(runs) == 3 and float(runs[0]["recall_angry"]) == pytest.approx(0.70)
    assert runs[2]["search_seconds"] == "" and runs[0]["test_groups"] == "Session1"


def test_corrupt_run_is_skipped_with_a_warning(
    small_study: Path, capsys: pytest.CaptureFixture[str]
):
    broken = small_study / "broken-fold3"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"ua": 0.5, "wa": ')
    missing_ua = small_study / "partial-fold4"
    missing_ua.mkdir()
    (missing_ua / "metrics.json").write_text(json.dumps({"wa": 0.5}))
    records = collect_runs(small_study)
    assert [r.name for r in records] == ["baseline-cnn_lstm-fold2"]
    err = capsys.readouterr().err
    assert "skipping run" in err and str(broken) in err and str(missing_ua) in err
    markdown = write_report(small_study)["report"].read_text()
    assert "## Skipped runs" in markdown and "partial-fold4" in markdown


def test_corrupt_history_and_architecture_only_lose_their_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    run = make_run(tmp_path, "run", ua=0.6, wa=0.6, fold=0)
    (run / "architecture.json").write_text("not json")
    (run / "history.csv").write_bytes(b"\xff\xfe\x00garbage")
    written = render_run(run)
    assert [p.name for p in written] == ["confusion_matrix.png"]
    assert "architecture.json" in capsys.readouterr().err


def test_render_run_without_alpha_skips_the_alpha_picture(tmp_path: Path):
    run = make_run(tmp_path, "random-fold0", ua=0.6, wa=0.6, fold=0, strategy="random", alpha=False)
    names = {p.name for p in render_run(run)}
    assert "alpha.png" not in names and {"curves.png", "cell_seq.png"} <= names


def test_directory_without_runs_is_an_error_naming_it(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmodartsError, match="empty"):
        write_report(tmp_path / "empty")
    with pytest.raises(EmodartsError, match="not a directory"):
        collect_runs(tmp_path / "missing")


def test_alpha_plot_returns_none_without_alpha_columns(tmp_path: Path):
    assert plots.plot_alpha_evolution(_history(2, alpha=False), tmp_path / "a.png") is None
    assert plots.plot_alpha_evolution([], tmp_path / "a.png") is None
    assert not (tmp_path / "a.png").exists()


def test_alpha_columns_group_edges_by_cell_and_op():
    grouped = plots.alpha_columns(_history(1, alpha=True))
    assert sorted(grouped) == ["normal", "reduce", "seq"]
    assert grouped["seq"]["lstm_2"] == [f"alpha/seq/{e}/lstm_2" for e in ("2_0", "2_1", "3_0")]


def test_plot_cell_names_a_missing_cell(tmp_path: Path):
    with pytest.raises(ArchitectureError, match="'sequence'.*seq"):
        plots.plot_cell({"architecture": ARCHITECTURE}, "sequence", tmp_path / "c.png")


def test_confusion_matrix_shape_must_match_class_names(tmp_path: Path):
    with pytest.raises(ValueError, match="3 class names"):
        plots.plot_confusion_matrix([[1, 0], [0, 1]], CLASSES[:3], tmp_path / "cm.png")


def test_cli_prints_the_summary_and_where_files_went(
    small_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    parser = argparse.ArgumentParser(prog="emodarts")
    cli_report.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(small_study), "--out", str(tmp_path / "rep")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| synth | baseline | cnn_lstm | 1 | 1 (2) | 50.00 | 50.00 |" in out
    assert str(tmp_path / "rep" / "report.md") in out
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert "![curves](baseline-cnn_lstm-fold2/curves.png)" in markdown  # --out takes them too

    args = parser.parse_args(["report", str(tmp_path / "nowhere")])
    with pytest.raises(EmodartsError, match="nowhere"):
        args.func(args)


def test_cli_through_the_entry_point(
    small_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    from emodarts_nni.cli import main as cli_main

    # main.py registers only COMMAND_MODULES; the lead adds this module there.
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("emodarts_nni.cli.report",))
    assert cli_main.main(["report", str(small_study)]) == 0
    assert (small_study / "report.md").is_file()
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert cli_main.main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emodarts: error: no finished runs") and str(tmp_path / "empty") in err
    assert len(err.strip().splitlines()) == 1


def test_scatter_labels_of_nearby_points_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from emodarts_nni.reporting.plots import annotate_points

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    points = [(6.2, 75.1, "baseline:cnn / - (synth)"), (7.2, 75.1, "pc-darts / emodarts (synth)")]
    points += [(6.3, 71.4, "random-oneshot / emodarts"), (6.9, 71.4, "darts-minus / emodarts")]
    ax.scatter([p[0] for p in points], [p[1] for p in points])
    ax.set_xlim(0, 10)
    ax.set_ylim(65, 85)
    annotate_points(ax, points)
    renderer = fig.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_alpha_lines_of_a_cell_never_share_colour_and_style():
    """Issue 22: the SeqNN panel repeated colours across its lines. Every op of a cell gets
    its own (colour, line style) pair; an RNN op and its LSTM twin share a colour only."""
    from emodarts_nni.reporting.plots import _alpha_line_styles
    from emodarts_nni.space.op_names import CNN_OP_NAMES, SEQ_OP_NAMES

    for ops in (SEQ_OP_NAMES, CNN_OP_NAMES):
        styles = _alpha_line_styles(sorted(ops))
        pairs = [(str(s["color"]), str(s["linestyle"])) for s in styles.values()]
        assert len(set(pairs)) == len(ops), ops
    seq = _alpha_line_styles(sorted(SEQ_OP_NAMES))
    assert seq["rnn_2"]["color"] == seq["lstm_2"]["color"]
    assert seq["rnn_2"]["linestyle"] != seq["lstm_2"]["linestyle"]
    assert (
        len({str(seq[op]["color"]) for op in SEQ_OP_NAMES if op.startswith(("rnn_", "lstm_"))}) == 6
    )


def test_a_single_epoch_alpha_plot_draws_points_on_a_readable_axis(tmp_path: Path, monkeypatch):
    """Issue 22: after 1 epoch alpha.png showed an empty axis from -0.045 to 0.045."""
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: saved.append(fig) or Path(path))
    row = {"stage": "search", "epoch": 0, "alpha/seq/2_0/rnn_1": 0.5, "alpha/seq/2_0/none": 0.5}
    assert plots.plot_alpha_evolution([row], tmp_path / "alpha.png") is not None
    (ax,) = saved[0].axes[:1]
    assert ax.get_xlim() == (-1.0, 1.0) and list(ax.get_xticks()) == [0.0]
    assert all(line.get_marker() == "o" for line in ax.get_lines())
    assert ax.get_ylim()[1] > 0.5  # the point is inside the frame
