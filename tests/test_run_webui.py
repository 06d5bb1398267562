"""`emodarts run` end to end with DARTS, ENAS and random, checked through NNI's REST API.

The web UI's own data source must show per-epoch (intermediate) and final metrics for a
one-shot run (its search runs as the trial of a one-trial experiment) and for a
multi-trial run (one trial per sampled architecture).
"""

from __future__ import annotations

import json

import pytest
from test_pipeline import RUN_FILES, tiny_config
from test_webui import free_port

from emodarts_nni import load_architecture
from emodarts_nni.cli.main import main
from emodarts_nni.nni_runtime import (
    fetch_metrics,
    fetch_trial_jobs,
    stop_experiment,
    view_experiment,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def nni_home(tmp_path, monkeypatch):
    """Keep NNI's experiment registry out of the real home folder."""
    from nni.tools.nnictl import constants

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(constants, "NNI_HOME_DIR", str(tmp_path / "home" / "nni-experiments"))


def _view_metrics(run_dir):
    port = free_port()
    view_experiment(run_dir, port)
    try:
        return fetch_metrics(port), fetch_trial_jobs(port)
    finally:
        stop_experiment(port)


def test_darts_run_reports_epochs_and_final_ua_to_the_web_ui(tmp_path, cache, nni_home):
    config = tiny_config(tmp_path, cache, webui={"enabled": True}, retrain={"epochs": 3})
    out = tmp_path / "darts"
    assert main(["run", str(config), "--out", str(out), "--port", str(free_port())]) == 0
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    metrics, trials = _view_metrics(out)
    assert [t["status"] for t in trials] == ["SUCCEEDED"]
    intermediate = [m for m in metrics if m["type"] == "PERIODICAL"]
    final = [m for m in metrics if m["type"] == "FINAL"]
    assert len(intermediate) == 1 + 3, intermediate  # one search epoch + three retrain epochs
    assert {m["value"]["stage"] for m in intermediate} == {"search", "retrain"}
    run_metrics = json.loads((out / "metrics.json").read_text())
    assert len(final) == 1 and final[0]["default"] == pytest.approx(run_metrics["ua"])
    # What was found, in the web UI: the cells as text and the parameter count.
    assert final[0]["value"]["parameters"] == run_metrics["parameters"]
    assert final[0]["value"]["architecture"].startswith("normal: ")
    assert "collapse" in intermediate[0]["value"]  # search epochs carry the collapse metrics
    assert not list((tmp_path / "home").glob("nni-experiments/*/db"))  # NNI files stay in the run


def test_random_multi_trial_search_shows_every_trial(tmp_path, cache, nni_home):
    config = tiny_config(tmp_path, cache, webui={"enabled": True}, search={"max_trials": 2})
    out = tmp_path / "random"
    assert (
        main(
            [
                "run",
                str(config),
                "--strategy",
                "random",
                "--out",
                str(out),
                "--port",
                str(free_port()),
            ]
        )
        == 0
    )
    load_architecture(out / "architecture.json")
    metrics, trials = _view_metrics(out)
    assert len(trials) == 2 and all(t["status"] == "SUCCEEDED" for t in trials)
    finals = [m for m in metrics if m["type"] == "FINAL"]
    assert len(finals) == 2
    assert len([m for m in metrics if m["type"] == "PERIODICAL"]) == 2  # one epoch per trial
    arch = json.loads((out / "architecture.json").read_text())
    assert arch["provenance"]["strategy"] == "random"
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "random"


def test_enas_run(tmp_path, cache):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "enas"
    assert main(["run", str(config), "--strategy", "enas", "--out", str(out)]) == 0
    assert json.loads((out / "architecture.json").read_text())["provenance"]["strategy"] == "enas"
    assert (out / "metrics.json").is_file()
