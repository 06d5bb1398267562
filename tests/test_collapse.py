"""Collapse detection, DARTS+ early stop, the single-class warning and what the web UI gets."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from test_pipeline import tiny_config
from torch import nn

from emodarts_nni.space.genotype import alpha_column, edge_name
from emodarts_nni.space.ops import CNN_OPS, PARAMETER_FREE_OPS, SEQ_OPS
from emodarts_nni.strategy.collapse import (
    COLLAPSE_SHARE,
    DECIDED_ENTROPY,
    CollapseMonitor,
    EarlyStop,
    cell_collapse,
    collapse_metrics,
    collapse_summary,
    web_fields,
)
from emodarts_nni.training.metrics import classification_report, single_class

CNN = list(CNN_OPS)  # includes "none"
SEQ = list(SEQ_OPS)
EDGES = ["2_0", "2_1", "3_0", "3_1", "3_2"]  # a 2-node cell: nodes 2 and 3


def table(ops: list[str], favourite: dict[str, str] | None = None, weight: float = 8.0):
    """softmax(α) per edge: uniform, or with ``favourite[edge]`` ``weight`` times as likely."""
    out = {}
    for edge in EDGES:
        logits = {op: 0.0 for op in ops}
        if favourite and edge in favourite:
            logits[favourite[edge]] = math.log(weight)
        z = sum(math.exp(v) for v in logits.values())
        out[edge] = {op: math.exp(v) / z for op, v in logits.items()}
    return out


def row_of(cells: dict[str, dict[str, dict[str, float]]], **extra) -> dict:
    row = {"stage": "search", **extra}
    for cell, edges in cells.items():
        for edge, probs in edges.items():
            node, source = (int(p) for p in edge.split("_"))
            for op, p in probs.items():
                row[alpha_column(edge_name(cell, node, source), op)] = p
    return row


def test_parameter_free_ops_are_ops_of_the_tables():
    assert PARAMETER_FREE_OPS.issubset(set(CNN_OPS) | set(SEQ_OPS))


def test_a_cell_collapsed_to_skip_connect_is_detected():
    skips = {edge: "skip_connect" for edge in EDGES}
    m = cell_collapse("normal", table(CNN, skips))
    assert m.param_free == 1.0 and m.skips == 4  # 2 nodes × 2 kept edges
    assert m.entropy < DECIDED_ENTROPY
    assert m.collapsed
    seq = cell_collapse("seq", table(SEQ, skips))
    assert seq.collapsed and set(seq.exported) == {"skip_connect"}


def test_uniform_alpha_is_not_a_collapse():
    for cell, ops in (("normal", CNN), ("seq", SEQ)):
        m = cell_collapse(cell, table(ops))
        assert m.entropy == pytest.approx(1.0)
        assert m.param_free == 0.0  # ties go to ops with weights
        assert not m.collapsed


def test_a_nearly_uniform_random_draw_of_pools_is_not_a_collapse():
    # α within 0.5 % of uniform whose arg-max happens to be pools: the exported cell is a
    # random draw (the quickstart's 6-epoch search), not a collapse.
    pools = {edge: "max_pool_3x3" for edge in EDGES}
    m = cell_collapse("normal", table(CNN, pools, weight=1.005))
    assert m.param_free == 1.0
    assert m.entropy > DECIDED_ENTROPY
    assert not m.collapsed


def test_a_cell_with_convolutions_is_not_collapsed_and_reduction_cells_are_never_flagged():
    mixed = {
        "2_0": "sep_conv_3x3",
        "2_1": "skip_connect",
        "3_0": "dil_conv_3x3",
        "3_2": "conv_7x1_1x7",
    }
    m = cell_collapse("normal", table(CNN, mixed))
    assert m.param_free == pytest.approx(0.25)
    assert m.param_free < COLLAPSE_SHARE
    assert not m.collapsed
    pools = cell_collapse("reduce", table(CNN, {edge: "max_pool_3x3" for edge in EDGES}))
    assert pools.param_free == 1.0 and not pools.collapsed


def test_metrics_come_from_a_history_row_per_cell_and_go_to_the_web_ui():
    row = row_of(
        {"normal": table(CNN), "seq": table(SEQ, {edge: "skip_connect" for edge in EDGES})}
    )
    metrics = collapse_metrics(row)
    assert list(metrics) == ["normal", "seq"]
    CollapseMonitor().annotate(row)
    assert row["collapse/seq/collapsed"] == 1 and row["collapse/normal/collapsed"] == 0
    fields = web_fields(row)
    assert fields["collapse"] == "seq"
    assert fields["normal_entropy"] == pytest.approx(1.0)
    assert collapse_metrics({"stage": "search", "val_ua": 0.5}) == {}  # ENAS: no α
    summary = collapse_summary([row])
    assert summary["collapsed"] == {"normal": False, "seq": True}


def test_the_warning_names_the_collapsed_cell_once(caplog):
    monitor = CollapseMonitor()
    collapsed = row_of({"seq": table(SEQ, {edge: "skip_connect" for edge in EDGES})})
    with caplog.at_level(logging.WARNING, logger="emodarts"):
        monitor.annotate(dict(collapsed, epoch=3))
        monitor.annotate(dict(collapsed, epoch=4))
        monitor.annotate(row_of({"seq": table(SEQ)}, epoch=5))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "seq cell collapsed" in warnings[0]


def test_early_stop_on_two_skip_connects_in_the_normal_cell():
    rule = EarlyStop(stable_epochs=100)
    convs = {
        "2_0": "sep_conv_3x3",
        "2_1": "dil_conv_3x3",
        "3_0": "sep_conv_5x5",
        "3_1": "conv_7x1_1x7",
    }
    one_skip = dict(convs, **{"2_1": "skip_connect"})
    two_skips = dict(one_skip, **{"3_0": "skip_connect"})
    sequence = [convs, one_skip, two_skips]
    reasons = [rule.update(collapse_metrics(row_of({"normal": table(CNN, f)}))) for f in sequence]
    assert reasons[:2] == [None, None]
    assert reasons[2] is not None and "2 skip_connect" in reasons[2]


def test_early_stop_when_the_ranking_is_stable_for_n_epochs():
    rule = EarlyStop(stable_epochs=3)
    a = {"2_0": "sep_conv_3x3", "2_1": "dil_conv_3x3", "3_0": "sep_conv_5x5", "3_1": "conv_7x1_1x7"}
    b = dict(a, **{"2_0": "dil_conv_5x5"})
    sequence = [a, b, a, a, a, a]  # the ranking changes at epochs 1 and 2, then holds
    reasons = [rule.update(collapse_metrics(row_of({"normal": table(CNN, f)}))) for f in sequence]
    assert reasons[:5] == [None] * 5
    assert reasons[5] is not None and "unchanged for 3 epochs" in reasons[5]
    assert EarlyStop(3).update({}) is None  # no α, no rule


def test_single_class_fires_on_a_constant_predictor_and_not_on_a_balanced_one():
    names = ["angry", "happy", "neutral", "sad"]
    y_true = np.repeat(np.arange(4), 25)
    assert single_class(np.full(100, 2), names) == "neutral"
    assert single_class(np.r_[np.full(96, 1), [0, 2, 3, 0]], names) == "happy"  # 96 %: nearly
    assert single_class(y_true, names) is None
    assert single_class(np.r_[np.full(90, 1), np.zeros(10, int)], names) is None  # 90 %
    assert classification_report(y_true, np.full(100, 0), names)["single_class"] == "angry"
    assert classification_report(y_true, y_true, names)["single_class"] is None


class Constant(nn.Module):
    """A degenerate model: the same logits, class ``label`` winning, for every input."""

    def __init__(self, n_classes: int, label: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_classes).index_fill(0, torch.tensor(label), 5.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


@pytest.mark.e2e
def test_search_run_reports_stage_collapse_architecture_and_stops_early(tmp_path, caplog):
    """Through the real reporter: stage per epoch, collapse fields on search epochs, the
    architecture and parameter count on the final result; DARTS+'s stable-ranking stop
    (α frozen by a negligible arch lr); metrics.json flags; the single-class warning."""
    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.nni_runtime.reporter import TrialReporter
    from emodarts_nni.pipeline.data import prepare_fold
    from emodarts_nni.pipeline.retrain import evaluate
    from emodarts_nni.pipeline.run import run_pipeline

    config = tiny_config(
        tmp_path,
        tmp_path / "cache",
        search={"epochs": 4, "arch_lr": 1e-12, "early_stop": True, "early_stop_epochs": 1},
        retrain={"epochs": 1},
    )
    cfg = load_config(config)
    reporter = TrialReporter()
    assert not reporter.active  # outside NNI: reports are only recorded
    with caplog.at_level(logging.WARNING, logger="emodarts"):
        metrics = run_pipeline(cfg, tmp_path / "run", reporter=reporter)

    intermediate = [m for kind, m in reporter.history if kind == "PERIODICAL"]
    stages = [m["stage"] for m in intermediate]
    assert stages == ["search", "search", "retrain"]  # stopped after 2 of 4 search epochs
    for m in intermediate[:2]:
        assert {"normal_param_free", "normal_entropy", "seq_entropy", "collapse"} <= set(m)
    assert "collapse" not in intermediate[2]
    kind, final = reporter.history[-1]
    assert kind == "FINAL" and final["default"] == metrics["ua"]
    assert final["parameters"] == metrics["parameters"] > 0
    assert final["architecture"].startswith("normal: 2←") and " | seq: " in final["architecture"]
    json.dumps(final)  # what NNI's channel sends

    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["search_stopped_early"].startswith("op ranking unchanged")
    assert set(saved["collapsed"]) == {"normal", "reduce", "seq"}
    assert "single_class" in saved and "val_single_class" in saved
    assert any("search stopped early" in r.getMessage() for r in caplog.records)

    data = prepare_fold(cfg, tmp_path / "run", progress=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="emodarts"):
        report, _ = evaluate(Constant(len(data.class_names), 1), data, "test")
    assert report["single_class"] == data.class_names[1]
    assert any("single-class" in r.getMessage() for r in caplog.records)


def test_reports_list_what_the_ua_hides():
    from emodarts_nni.reporting.runs import run_warnings

    metrics = {
        "ua": 0.25,
        "single_class": "neutral",
        "val_single_class": None,
        "collapsed": {"normal": False, "reduce": False, "seq": True},
        "search_stopped_early": None,
    }
    warnings = run_warnings(metrics)
    assert len(warnings) == 2
    assert "'neutral'" in warnings[0] and "test" in warnings[0]
    assert "seq" in warnings[1] and "normal" not in warnings[1]
    assert run_warnings({"ua": 0.7, "wa": 0.7}) == []  # a healthy or older metrics.json


def test_the_run_summary_says_the_model_is_single_class(capsys):
    from emodarts_nni.cli.experiment import print_summary

    base = {
        "ua": 0.25,
        "wa": 0.25,
        "macro_f1": 0.1,
        "parameters": 10,
        "best_epoch": 1,
        "val_ua": 0.25,
    }
    print_summary({**base, "single_class": "sad", "collapsed": {"seq": True}})
    out = capsys.readouterr().out
    assert "WARNING: single-class model: predicts 'sad' for nearly every test utterance" in out
    assert "WARNING: the search collapsed (seq cell" in out
    print_summary({**base, "single_class": None})
    assert "WARNING" not in capsys.readouterr().out


def test_the_summary_leaves_out_what_a_run_does_not_have_and_names_whose_search(capsys):
    """Issue 22 item 6: ``evaluate`` printed ``None (nan)``; ``retrain`` printed the search
    time of the run that wrote its architecture.json as if it had searched."""
    from emodarts_nni.cli.experiment import print_summary

    base = {"ua": 0.5, "wa": 0.5, "macro_f1": 0.5, "parameters": 10, "test_groups": ["s01F"]}
    print_summary(base)  # emodarts evaluate: a checkpoint alone
    out = capsys.readouterr().out
    assert "None" not in out and "nan" not in out and "best epoch" not in out
    trained = {**base, "best_epoch": 3, "val_ua": 0.6, "retrain_seconds": 47.5}
    print_summary({**trained, "search_seconds": 103.057}, searched=False)
    out = capsys.readouterr().out
    assert "search (architecture.json's, not this run)  1 min 43 s" in out
    assert "retrain" in out and "47.5 s" in out
    print_summary({**trained, "search_seconds": 103.057})  # emodarts run: it searched
    out = capsys.readouterr().out
    assert "not this run" not in out and "1 min 43 s" in out


def test_a_run_ends_saying_the_web_ui_stopped_and_what_to_do_next(tmp_path):
    from emodarts_nni.cli.experiment import next_steps
    from emodarts_nni.pipeline.runfolder import RunFolder

    folder = RunFolder(tmp_path / "run one")
    folder.nni.mkdir(parents=True)
    folder.checkpoint.write_bytes(b"")
    text = next_steps(folder, webui=True)
    quoted = f"'{folder.path}'"
    assert f"the run's web UI has stopped; reopen it:  emodarts view {quoted}" in text
    assert f"emodarts report {quoted}" in text
    assert f"emodarts predict '{folder.checkpoint}' AUDIO.wav" in text
    assert (
        f"emodarts export --format onnx -o '{folder.path / 'model.onnx'}' '{folder.checkpoint}'"
        in text
    )
    assert "web UI" not in next_steps(folder, webui=False)  # --no-webui: there was none
    folder.checkpoint.unlink()
    assert "predict" not in next_steps(folder, webui=False)  # nothing trained yet
