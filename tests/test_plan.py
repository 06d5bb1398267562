"""``emodarts plan``: a run's size before anything is built, and the guard that uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emodarts_nni.cli.main import main
from emodarts_nni.space import sizing

ROOT = Path(__file__).resolve().parent.parent
IEMOCAP = ROOT / "experiments" / "iemocap.yaml"  # its corpus.root does not exist here
BENCHMARK = ROOT / "benchmarks" / "search_step.py"
TINY = [
    "--set", "space.init_channels=2", "--set", "space.cnn_cells=3", "--set", "space.cnn_nodes=2",
    "--set", "space.hidden=8", "--set", "features.n_mfcc=16", "--set", "features.pooled_frames=16",
]  # fmt: skip


def _plan(capsys, *argv: str) -> dict:
    assert main(["plan", str(IEMOCAP), "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_needs_no_corpus_and_prints_parameters_and_peak(capsys):
    result = _plan(capsys, "--set", "trainer.accelerator=cpu", *TINY)
    assert result["device"] == "cpu" and result["fits"] is True
    assert result["parameters"] == result["search"]["parameters"] > 0
    assert result["peak_bytes"] >= result["search"]["peak_bytes"] > 0
    assert result["space"]["cnn_nodes"] == 2 and result["suggestions"] == []


def test_plan_text_names_the_search_and_the_retraining(capsys):
    assert main(["plan", str(IEMOCAP), "--set", "trainer.accelerator=cpu", *TINY]) == 0
    out = capsys.readouterr().out
    assert "search (darts, batch 16, memory normal): supernet" in out
    assert "retrain (batch 16" in out and ": fits" in out


def test_set_changes_the_plan_as_it_changes_a_run(capsys):
    small = _plan(capsys, "--set", "trainer.accelerator=cpu", *TINY)
    large = _plan(
        capsys, "--set", "trainer.accelerator=cpu", "--set", "search.batch_size=64", *TINY
    )
    lean = _plan(capsys, "--set", "trainer.accelerator=cpu", "--set", "search.memory=lean", *TINY)
    assert large["search"]["peak_bytes"] > small["search"]["peak_bytes"]
    assert lean["search"]["peak_bytes"] < small["search"]["peak_bytes"]
    assert large["parameters"] == small["parameters"] == lean["parameters"]


def test_the_plan_sizes_each_strategys_own_step(capsys):
    cpu = ["--set", "trainer.accelerator=cpu", *TINY]
    darts = _plan(capsys, *cpu)["search"]
    second = _plan(capsys, *cpu, "--set", "search.strategy=darts-2nd")["search"]
    pc = _plan(
        capsys,
        *cpu,
        "--set",
        "search.strategy=pc-darts",
        "--set",
        "search.params={partial_channels: 2}",
    )
    minus = _plan(capsys, *cpu, "--set", "search.strategy=darts-minus")["search"]
    assert second["peak_bytes"] > darts["peak_bytes"] and "second order" in second["mode"]
    assert pc["search"]["supernet"] and "1/2 of the channels" in pc["search"]["mode"]
    assert minus["supernet"] and minus["peak_bytes"] == darts["peak_bytes"]
    assert not _plan(capsys, *cpu, "--set", "search.strategy=enas")["search"]["supernet"]


def test_plan_rejects_a_bad_override_on_one_line(capsys):
    assert main(["plan", str(IEMOCAP), "--set", "search.memroy=lean"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "search.memroy" in err


def test_too_large_a_run_gets_suggestions_each_with_its_peak(capsys):
    result = _plan(capsys, "--set", "trainer.accelerator=cpu", "--set", "search.batch_size=512")
    assert result["fits"] is False
    changes = {key for s in result["suggestions"] for key in s["set"]}
    assert {"search.batch_size", "space.cnn_nodes", "space.scope", "search.memory"} <= changes
    for suggestion in result["suggestions"]:
        assert suggestion["peak_bytes"] < result["peak_bytes"]
    assert any(s["fits"] for s in result["suggestions"])


def test_a_gpu_config_is_compared_with_a_24_gib_gpu_when_none_is_here(capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the plan compares with it")
    result = _plan(capsys)  # iemocap.yaml asks for a GPU: the paper's full search
    assert result["device"] == "gpu" and result["memory_bytes"] is None
    assert [g["fits"] for g in result["reference_gpus"]] == [True, True]


def test_run_is_refused_with_the_plans_estimate_before_any_data_work(capsys, tmp_path):
    argv = ["run", str(IEMOCAP), "--no-webui", "--out", str(tmp_path / "run")]
    argv += ["--set", "trainer.accelerator=cpu", "--set", "search.batch_size=512"]
    argv += ["--set", "corpus.kind=synth", "--set", "corpus.options={}"]
    argv += ["--set", "corpus.root=null"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "this run needs about" in err and "emodarts plan" in err
    assert not (tmp_path / "run").exists()


def test_the_guard_is_callable_from_python_without_the_cli(tmp_path):
    from emodarts_nni.common.errors import ConfigError
    from emodarts_nni.config import load_config
    from emodarts_nni.pipeline.plan import NO_CORPUS, guard_run, plan

    # NO_CORPUS: iemocap's corpus.root does not exist here, and sizes do not depend on it
    overrides = {**NO_CORPUS, "trainer.accelerator": "cpu", "search.batch_size": 512}
    cfg = load_config(IEMOCAP, overrides)
    assert plan(cfg)["fits"] is False
    with pytest.raises(ConfigError, match=r"^this run needs about .*; see `emodarts plan`"):
        guard_run(cfg)


def test_release_0_1s_cli_plan_guard_run_still_imports_with_a_warning():
    import emodarts_nni.cli.plan as old
    from emodarts_nni.pipeline import plan as new

    with pytest.warns(DeprecationWarning, match="emodarts_nni.pipeline.plan.guard_run"):
        assert old.guard_run is new.guard_run


def _measured(row: str, sizes: dict, batch: int) -> dict:
    cmd = [sys.executable, str(BENCHMARK), "--child", row, "--steps", "0", "--batch", str(batch)]
    cmd += ["--threads", "1", "--sizes", json.dumps(sizes)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("row", "sizes"),
    # sizes the estimate was not calibrated on (32 × 32 and 64 × 64 inputs, 4 × 4 CNN
    # cells, hidden 128): peak RSS growth of one search step, batch 8, in a fresh process
    [
        ("cnn_only:frugal", {"n_mfcc": 40, "frames": 40, "cnn_nodes": 3}),
        ("joint2:lean", {"n_mfcc": 40, "frames": 40, "hidden": 64}),
        # darts-2nd and pc-darts (K = 4), calibrated at 32 and 64 as above
        ("cnn_only:second", {"n_mfcc": 48, "frames": 48, "cnn_nodes": 3}),
        ("joint2:pc", {"n_mfcc": 40, "frames": 40, "hidden": 64}),
    ],
)
def test_plan_is_within_a_quarter_of_the_measured_peak(row, sizes):
    measured = _measured(row, sizes, 8)
    planned, peak = measured["planned_peak_bytes"], measured["peak_growth_bytes"]
    assert abs(planned / peak - 1) <= 0.25, (row, sizes, planned, peak)


def test_the_benchmark_and_the_plan_use_the_same_estimate():
    sys.path.insert(0, str(BENCHMARK.parent))
    try:
        import search_step
    finally:
        sys.path.remove(str(BENCHMARK.parent))
    args = search_step.space_args("cnn_only", {"n_mfcc": 48, "frames": 48})
    expected = sizing.search_estimate(args, 8, memory="lean").peak_bytes
    assert search_step.planned("cnn_only", "lean", {"n_mfcc": 48, "frames": 48}, 8) == expected
