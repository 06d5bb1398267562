"""NNI 3.0's ``remote`` training service through an OpenSSH server on 127.0.0.1.

The module-scoped ``sshd`` is a real ``/usr/sbin/sshd`` (``sshd_fixture.py``) that accepts
one generated key. Its sessions get a home folder of their own whose ``~/.bashrc`` puts a
``python3`` without NNI first in ``PATH``, as pyenv or conda set-ups do on real machines:
trials only run the machine's ``python_path`` interpreter if :mod:`emodarts_nni.nni_runtime.remote`
carries it. Each experiment is checked through NNI's REST API (the web UI's data source).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from sshd_fixture import SshServer, running_sshd, sshd_binary
from test_webui import free_port, listening_addresses, reachable

import emodarts_nni
from emodarts_nni.common.errors import ConfigError
from emodarts_nni.nni_runtime import (
    fetch_metrics,
    fetch_status,
    fetch_trial_jobs,
    launch_trial_experiment,
    manager_patches,
)
from emodarts_nni.nni_runtime import remote as remote_service
from emodarts_nni.nni_runtime.remote import (
    check_platform,
    preload_source,
    remote_patches,
    remote_training_service,
    remote_trial_command,
)
from emodarts_nni.nni_runtime.rest import FINISHED_STATUSES

#: Longest a tiny experiment may take to finish (CPU shared with other jobs).
EXPERIMENT_TIMEOUT_S = 240
SHADOW_MESSAGE = "the ~/.bashrc python3 ran instead of python_path's"
PYTHON_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> SshServer:
    if sshd_binary() is None:
        pytest.skip("openssh-server is not installed (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("sshd")
    checkout = Path(emodarts_nni.__file__).resolve().parents[1]
    with running_sshd(folder, environment={"PYTHONPATH": str(checkout)}) as server:
        shadow = server.home / "shadow-bin"
        shadow.mkdir()
        for name in ("python", "python3"):
            script = shadow / name
            script.write_text(f"#!/bin/sh\necho {SHADOW_MESSAGE!r} >&2\nexit 3\n")
            script.chmod(0o755)
        (server.home / ".bashrc").write_text(f'export PATH="{shadow}:$PATH"\n')
        yield server


def _machine(server: SshServer, **changes) -> dict:
    machine = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "ssh_key_file": str(server.key_file),
        "python_path": PYTHON_BIN,
    }
    machine.update(changes)
    return machine


def _wait_finished(port: int) -> str:
    deadline = time.monotonic() + EXPERIMENT_TIMEOUT_S
    while (status := fetch_status(port)) not in FINISHED_STATUSES:
        assert time.monotonic() < deadline, f"experiment still {status}"
        time.sleep(1.0)
    return status


def _remote_environment(server: SshServer, experiment_id: str) -> Path:
    """The folder NNI's trial keeper used on the machine (``~/nni-experiments/...``)."""
    return server.home / "nni-experiments" / experiment_id / "environments" / "remote-worker1"


def _trial_output(server: SshServer, experiment_id: str) -> str:
    files = sorted(_remote_environment(server, experiment_id).glob("trials/*/trial.std*"))
    return "\n".join(f"--- {path.name}\n{path.read_text()}" for path in files)


def _keeper_listening_addresses(server: SshServer, experiment_id: str) -> set[str]:
    """Addresses the machine's trial keeper (a Node.js daemon) listens on."""
    environment = _remote_environment(server, experiment_id)
    keeper = psutil.Process(int((environment / "trial_keeper" / "trial_keeper.pid").read_text()))
    return {
        connection.laddr.ip
        for connection in keeper.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }


def _assert_nothing_left(server: SshServer, experiment_id: str, port: int) -> None:
    """No manager port, no SSH port forward, no trial keeper process outlives the run."""
    environment = _remote_environment(server, experiment_id)
    launcher = json.loads((environment / "trial_keeper" / "launcher_config.json").read_text())
    tunnel_port = urlsplit(launcher["managerCommandChannel"]).port
    keeper_pid = int((environment / "trial_keeper" / "trial_keeper.pid").read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        reachable("127.0.0.1", port)
        or reachable("127.0.0.1", tunnel_port)
        or psutil.pid_exists(keeper_pid)
    ):
        time.sleep(0.5)
    assert not reachable("127.0.0.1", port), "the NNI manager still listens"
    assert not reachable("127.0.0.1", tunnel_port), "the SSH port forward is still open"
    assert not psutil.pid_exists(keeper_pid), "the remote trial keeper still runs"


def test_plain_remote_experiment_reports_its_final_metric(sshd, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(
        "import os, nni\n"
        "assert os.environ['NNI_PLATFORM'] == 'remote', os.environ['NNI_PLATFORM']\n"
        "parameters = nni.get_next_parameter()\n"
        "nni.report_final_result(parameters['x'] / 4)\n"
    )
    working_dir = tmp_path / "nni"
    from nni.experiment import Experiment

    experiment = Experiment("remote")
    config = experiment.config
    config.training_service = remote_training_service([_machine(sshd)])
    config.trial_command = "python3 trial.py"
    config.trial_code_directory = code
    config.experiment_working_directory = working_dir
    config.search_space = {"x": {"_type": "choice", "_value": [1]}}
    config.tuner.name = "GridSearch"
    config.max_trial_number = 1
    config.trial_concurrency = 1
    config.log_level = "debug"  # the manager log then lists every command run over SSH
    port = free_port()
    with manager_patches(working_dir), remote_patches():
        experiment.start(port)
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
        status = _wait_finished(port)
        trials, metrics = fetch_trial_jobs(port), fetch_metrics(port)
        keeper_addresses = _keeper_listening_addresses(sshd, experiment.id)
    finally:
        with manager_patches(working_dir):
            experiment.stop()
    output = _trial_output(sshd, experiment.id)
    assert SHADOW_MESSAGE not in output
    assert status == "DONE" and [t["status"] for t in trials] == ["SUCCEEDED"], output
    finals = [m for m in metrics if m["type"] == "FINAL"]
    assert [m["default"] for m in finals] == [0.25]
    # NNI did not try to reinstall itself on the machine, it only checked the import
    manager_log = (working_dir / experiment.id / "log" / "nnimanager.log").read_text()
    assert "-m pip install nni" not in manager_log
    assert '-c "import nni"' in manager_log
    # the trial keeper dialled the manager through the SSH session, not the manager's port
    environment = _remote_environment(sshd, experiment.id)
    launcher = json.loads((environment / "trial_keeper" / "launcher_config.json").read_text())
    assert launcher["managerCommandChannel"].startswith("ws://127.0.0.1:")
    assert f":{port}/" not in launcher["managerCommandChannel"]
    # the machine's trial keeper served its trials on loopback only
    assert keeper_addresses == {"127.0.0.1"}
    assert not (Path.home() / "nni-experiments" / experiment.id).exists()
    _assert_nothing_left(sshd, experiment.id, port)


def test_pipeline_trial_on_the_remote_service_reports_epochs_and_final_ua(sshd, tmp_path):
    from test_pipeline import tiny_config

    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.runfolder import RunFolder

    cfg = load_config(tiny_config(tmp_path, tmp_path / "cache", retrain={"epochs": 2}))
    run = RunFolder((tmp_path / "run").resolve())
    run.start(cfg)
    run_dir = run.path
    command = [sys.executable, "-m", "emodarts_nni.pipeline.trial", str(run_dir)]
    command += ["--stages", "retrain,evaluate", "--baseline", "cnn"]
    port = free_port()
    handle = launch_trial_experiment(
        command,
        experiment_dir=run_dir / "nni",
        port=port,
        name="remote-baseline",
        platform="remote",
        machines=[_machine(sshd)],
    )
    with handle:
        assert listening_addresses(port) == {"127.0.0.1"}
        status = handle.wait(timeout=EXPERIMENT_TIMEOUT_S)
        metrics = handle.metrics()
    output = _trial_output(sshd, handle.id)
    assert status == "SUCCEEDED", output
    intermediate = [m for m in metrics if m["type"] == "PERIODICAL"]
    finals = [m for m in metrics if m["type"] == "FINAL"]
    assert len(intermediate) == 2, intermediate  # one per retrain epoch
    run_metrics = run.read_metrics()
    assert len(finals) == 1 and finals[0]["default"] == pytest.approx(run_metrics["ua"])
    _assert_nothing_left(sshd, handle.id, port)


def test_tiny_study_runs_its_cells_on_the_remote_training_service(sshd, tmp_path):
    """The study issue's remote check: ``emodarts study`` with ``platform: remote`` and the
    local sshd as its one machine; every cell's trial runs there and reports back."""
    from test_study_e2e import write_study

    from emodarts_nni.cli.main import main
    from emodarts_nni.nni_runtime import stop_experiment, view_experiment
    from emodarts_nni.nni_runtime.rest import rest

    study = write_study(
        tmp_path,
        tmp_path / "cache",
        grid={"splits.fold": [0], "search.strategy": ["darts"]},
        controls={"baselines": ["cnn"], "classical": True},
        training_service={"platform": "remote", "machine_list": [_machine(sshd)]},
    )
    out = tmp_path / "study"
    port = free_port()
    assert main(["study", str(study), "--out", str(out), "--port", str(port)]) == 0
    assert not reachable("127.0.0.1", port)
    cells = [c["id"] for c in json.loads((out / "study.json").read_text())["cells"]]
    assert cells == ["darts", "baseline-cnn", "classical"]
    with (out / "folds.csv").open(newline="") as fh:
        rows = {row["run_dir"]: row for row in csv.DictReader(fh)}
    for cell in cells:
        metrics = json.loads((out / cell / "metrics.json").read_text())
        assert float(rows[cell]["ua"]) == pytest.approx(metrics["ua"])
    view = free_port()
    view_experiment(out, view)
    try:
        profile = rest(view, "/experiment")
        jobs = rest(view, "/trial-jobs")
    finally:
        stop_experiment(view)
    service = profile["params"]["trainingService"]
    service = service[0] if isinstance(service, list) else service
    assert service["platform"] == "remote"
    assert len(jobs) == 3 and {job["status"] for job in jobs} == {"SUCCEEDED"}


# ------------------------------------------------------------------ configuration


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "id_ed25519"
    path.write_text("not read by the config\n")
    return path


def test_machines_section_becomes_nni_remote_config(key_file):
    config = remote_training_service(
        [
            {"host": "gpu1", "user": "me", "ssh_key_file": str(key_file)},
            {
                "host": "gpu2",
                "port": 2222,
                "user": "you",
                "ssh_key_file": key_file.name,
                "python_path": "/opt/venv/bin",
            },
        ],
        base_dir=key_file.parent,
    )
    assert config.platform == "remote" and config.reuse_mode is False
    assert config.nni_manager_ip == "127.0.0.1"
    first, second = config.machine_list
    assert (first.host, first.port, first.user, first.python_path) == ("gpu1", 22, "me", None)
    assert (second.host, second.port, second.user) == ("gpu2", 2222, "you")
    assert second.ssh_key_file == str(key_file.resolve()) and second.python_path == "/opt/venv/bin"


@pytest.mark.parametrize(
    ("machines", "message"),
    [
        ([{"host": "h", "user": "u", "pasword": "x"}], "unknown key 'pasword'"),
        ([{"user": "u"}], r"machine_list\[0\]\.host is required"),
        ([{"host": "h"}], r"machine_list\[0\]\.user is required"),
        (
            [{"host": "h", "user": "u", "port": 70000}],
            r"machine_list\[0\]\.port must be a TCP port",
        ),
        ([{"host": "h", "user": "u", "port": "22"}], r"machine_list\[0\]\.port must be a TCP port"),
        ([{"host": "h", "user": "u", "ssh_key_file": "missing"}], "ssh_key_file: no such file"),
        ([{"host": "h", "user": "u", "python_path": ""}], r"python_path must be a folder"),
        ([], "machine_list is empty"),
        ({"host": "h", "user": "u"}, "must be a list of machines"),
        (["h"], r"machine_list\[0\] must be a mapping"),
    ],
)
def test_bad_machines_section_fails_with_one_line_naming_it(machines, message, key_file):
    for machine in machines if isinstance(machines, list) else []:
        if isinstance(machine, dict) and "ssh_key_file" not in machine:
            machine["ssh_key_file"] = str(key_file)
    with pytest.raises(ConfigError, match=message) as error:
        remote_training_service(machines, base_dir=key_file.parent)
    assert "\n" not in str(error.value)


def test_unknown_platform_and_remote_without_machines_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="platform 'slurm' is not supported"):
        check_platform("slurm")
    port = free_port()
    with pytest.raises(ConfigError, match="machine_list is empty"):
        launch_trial_experiment(
            ["true"], experiment_dir=tmp_path / "nni", port=port, name="x", platform="remote"
        )
    assert not reachable("127.0.0.1", port) and not (tmp_path / "nni").exists()


def test_remote_trial_command_uses_the_machines_python():
    command = remote_trial_command([sys.executable, "-m", "emodarts_nni.pipeline.trial", "RUN"])
    assert command == ["python3", "-m", "emodarts_nni.pipeline.trial", "RUN"]
    assert remote_trial_command(["bash", "run.sh"]) == ["bash", "run.sh"]


def test_manager_preload_is_valid_javascript(tmp_path):
    import nni_node

    node = Path(nni_node.__path__[0]) / "node"
    script = tmp_path / remote_service.PRELOAD_NAME
    script.write_text(preload_source("127.0.0.1"))
    result = subprocess.run([str(node), "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # the shell quoting the patches put around python_path survives bash unchanged
    awkward = "/opt/it's a venv/bin"
    quoted = subprocess.run(
        [
            str(node),
            "-e",
            f"{preload_source('127.0.0.1')}\nprocess.stdout.write(shellQuote({json.dumps(awkward)}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True, text=True).stdout
        == awkward
    )
