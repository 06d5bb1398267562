"""The web UI bridge, checked through NNI's REST API (the web UI's own data source).

One module-scoped run launches a one-trial ``Experiment('local')`` whose trial runs a DARTS
search on the toy space (``toyspace.py`` as a script) with ``HOME`` pointed at an empty
folder; the tests below read what it left: metrics, trial, listening sockets, files, and
the reopened (viewed) web UI.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import toyspace

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.nni_runtime import (
    TrialReporter,
    fetch_metrics,
    fetch_status,
    fetch_trial_jobs,
    find_experiment,
    launch_trial_experiment,
    registry_dir,
    stop_experiment,
    view_experiment,
)

EPOCHS = 2


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """The local addresses of every socket listening on ``port``."""
    return {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    }


def external_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass
class BridgeRun:
    """What the one-shot bridge run left behind."""

    run_dir: Path
    home: Path
    experiment_id: str
    status: str
    metrics: list[dict[str, Any]]
    trial_jobs: list[dict[str, Any]]
    listening: set[str]
    reachable_externally: bool | None
    architecture: Any


@pytest.fixture(scope="module")
def darts_bridge(tmp_path_factory: pytest.TempPathFactory) -> BridgeRun:
    """A DARTS search on the toy space, run as the one trial of an NNI experiment."""
    from nni.tools.nnictl import constants

    root = tmp_path_factory.mktemp("bridge")
    home, run_dir = root / "home", root / "run"
    home.mkdir()
    command = [
        sys.executable,
        toyspace.__file__,
        "--strategy",
        "darts",
        "--epochs",
        str(EPOCHS),
        "--output",
        run_dir / "architecture.json",
    ]
    with pytest.MonkeyPatch.context() as patch:
        # Children see the empty HOME; NNI's Python side resolved "~" at import, so point it too.
        patch.setenv("HOME", str(home))
        patch.setattr(constants, "NNI_HOME_DIR", str(home / "nni-experiments"))
        handle = launch_trial_experiment(
            command,
            experiment_dir=run_dir / "nni",
            port=free_port(),
            name="toy-darts",
            max_trial_duration="3m",
        )
        try:
            status = handle.wait(timeout=180)
            listening = listening_addresses(handle.port)
            address = external_address()
            externally = None if address is None else reachable(address, handle.port)
            metrics, jobs = handle.metrics(), handle.trial_jobs()
        finally:
            handle.stop()
    output = run_dir / "architecture.json"
    architecture = json.loads(output.read_text()) if output.exists() else None
    return BridgeRun(
        run_dir, home, handle.id, status, metrics, jobs, listening, externally, architecture
    )


def trial_stderr(run: BridgeRun) -> str:
    """The tail of the trial's stderr, for failure messages."""
    logs = [Path(job["logPath"]) / "trial.stderr" for job in run.trial_jobs]
    return "\n".join(path.read_text()[-3000:] for path in logs if path.is_file())


# ------------------------------------------------------------------ one-shot bridge


@pytest.mark.e2e
def test_one_shot_search_reports_each_epoch_and_a_final_metric(darts_bridge: BridgeRun) -> None:
    assert darts_bridge.status == "SUCCEEDED", trial_stderr(darts_bridge)
    (job,) = darts_bridge.trial_jobs
    mine = [m for m in darts_bridge.metrics if m["trial_id"] == job["trialJobId"]]
    intermediate = [m for m in mine if m["type"] == "PERIODICAL"]
    (final,) = [m for m in mine if m["type"] == "FINAL"]
    assert [m["sequence"] for m in intermediate] == list(range(EPOCHS))
    assert [m["value"]["epoch"] for m in intermediate] == list(range(EPOCHS))
    for metric in [*intermediate, final]:  # dicts with a float "default": the UI plots them
        assert isinstance(metric["value"], dict) and isinstance(metric["default"], float)
        assert 0.0 <= metric["default"] <= 1.0
    assert "train_loss" in intermediate[0]["value"]
    assert not any(key.startswith("prob/") for key in intermediate[0]["value"])
    assert final["default"] == intermediate[-1]["default"]
    assert final["value"]["epochs"] == EPOCHS


@pytest.mark.e2e
def test_exported_architecture_comes_back_to_the_launcher(darts_bridge: BridgeRun) -> None:
    assert darts_bridge.architecture is not None, trial_stderr(darts_bridge)
    toyspace.assert_valid_architecture(darts_bridge.architecture)


@pytest.mark.e2e
def test_trial_parameters_show_in_the_web_ui(darts_bridge: BridgeRun) -> None:
    (job,) = darts_bridge.trial_jobs
    (record,) = [json.loads(parameters) for parameters in job["hyperParameters"]]
    assert record["parameters"] == {"run": "toy-darts"}
    assert Path(job["logPath"]).is_relative_to(darts_bridge.run_dir / "nni")


@pytest.mark.e2e
def test_manager_listens_on_127_0_0_1_only(darts_bridge: BridgeRun) -> None:
    assert darts_bridge.listening == {"127.0.0.1"}
    assert darts_bridge.reachable_externally in (False, None)


@pytest.mark.e2e
def test_nni_writes_under_the_run_folder_and_nothing_to_home(darts_bridge: BridgeRun) -> None:
    assert not (darts_bridge.home / "nni-experiments").exists()
    experiments = darts_bridge.run_dir / "nni"
    assert (experiments / darts_bridge.experiment_id / "db" / "nni.sqlite").is_file()
    registry = json.loads((registry_dir(experiments) / ".experiment").read_text())
    assert registry[darts_bridge.experiment_id]["status"] == "STOPPED"


@pytest.mark.e2e
def test_view_reopens_the_stopped_experiment(darts_bridge: BridgeRun, tmp_path: Path) -> None:
    """nni-notes #3: NNI's own view fails for NAS experiments; ours reads the database."""
    from nni.tools.nnictl import constants

    assert find_experiment(darts_bridge.run_dir) == (
        (darts_bridge.run_dir / "nni").resolve(),
        darts_bridge.experiment_id,
    )
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path))
        patch.setattr(constants, "NNI_HOME_DIR", str(tmp_path / "nni-experiments"))
        try:
            url = view_experiment(darts_bridge.run_dir, port)
            assert url == f"http://127.0.0.1:{port}"
            assert fetch_status(port) == "VIEWED"
            assert fetch_metrics(port) == darts_bridge.metrics
            assert [job["status"] for job in fetch_trial_jobs(port)] == ["SUCCEEDED"]
            assert listening_addresses(port) == {"127.0.0.1"}
        finally:
            stop_experiment(port)
    assert not reachable("127.0.0.1", port)
    assert not (tmp_path / "nni-experiments").exists()


# ----------------------------------------------------------------- smaller behaviours


@pytest.mark.e2e
def test_wait_reports_a_failed_trial(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "raise SystemExit(3)"]
    with launch_trial_experiment(
        command, experiment_dir=tmp_path, port=free_port(), name="fails"
    ) as handle:
        assert handle.wait(timeout=60) == "FAILED"


def test_a_busy_port_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} is in use"):
            launch_trial_experiment(["true"], experiment_dir=tmp_path, port=port, name="busy")


def test_a_grid_must_list_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="grid 'fold' must be a non-empty list"):
        launch_trial_experiment(
            ["true"], experiment_dir=tmp_path, port=free_port(), name="g", grid={"fold": []}
        )


def test_view_of_a_folder_without_experiment_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no NNI experiment in it"):
        view_experiment(tmp_path, free_port())
    with pytest.raises(ConfigError, match="no such folder"):
        view_experiment(tmp_path / "missing", free_port())


def test_trial_reporter_outside_nni_only_records(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("NNI_PLATFORM", "NNI_TRIAL_JOB_ID", "NNI_TRIAL_COMMAND_CHANNEL"):
        monkeypatch.delenv(variable, raising=False)
    reporter = TrialReporter()
    assert not reporter.active and reporter.parameters == {}
    assert reporter.report_intermediate(0.5, epoch=0) == {"default": 0.5, "epoch": 0}
    reporter.report_final(0.75, ua=0.7)
    assert reporter.history == [
        ("PERIODICAL", {"default": 0.5, "epoch": 0}),
        ("FINAL", {"default": 0.75, "ua": 0.7}),
    ]
    assert reporter.last_value == 0.75
