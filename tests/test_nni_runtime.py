"""NNI's runtime behind one door: patches only while a manager is in use, clean interrupts.

* Importing ``emodarts_nni``, building a space or loading an architecture changes no NNI
  global (checked in a fresh interpreter).
* The manager patches nest, are restored after, and kill a manager whose start-up was
  interrupted; only the harmless ``nn.Buffer`` warning is silenced, and only locally.
* ``--no-webui`` multi-trial searches run in-process, without NNI's manager.
* SIGTERM (and Ctrl-C) to ``emodarts view`` / ``emodarts run`` at any moment of start-up
  leaves nothing listening and no manager process behind.
* A bad config fails before torch, NNI or gym are imported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from conftest import SMALL_SPACE
from test_pipeline import tiny_config
from test_webui import free_port, listening_addresses

from emodarts_nni.nni_runtime import (
    deferred_interrupts,
    launch_trial_experiment,
    manager_patches,
    quiet_nni_import,
    terminate_as_interrupt,
)
from emodarts_nni.nni_runtime.patches import BUFFER_WARNING

REPO = Path(__file__).resolve().parents[1]
#: Upper bound for anything a test waits for (polled, never slept through).
DEADLINE = 120.0


def _python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=DEADLINE,
    )


def _poll(condition: Callable[[], object], timeout: float = DEADLINE, interval: float = 0.1):
    """``condition()``'s first truthy value, checked every ``interval`` s up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"still not true after {timeout} s: {condition}")


# ------------------------------------------------------------------- no global changes

_SNAPSHOT = """
import logging, signal, sys, warnings
import torch  # torch adds warning filters of its own at import: not ours to judge
from nni.experiment import launcher
from nni.tools.nnictl import config_utils, constants

def snapshot():
    loggers = {"": logging.getLogger()} | {
        name: logger for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    return {
        "launcher.Popen": launcher.Popen,
        "launcher._check_rest_server": launcher._check_rest_server,
        "Experiments.__init__": config_utils.Experiments.__init__,
        "NNI_HOME_DIR": constants.NNI_HOME_DIR,
        "logger filters": {n: list(l.filters) for n, l in loggers.items() if l.filters},
        "warnings.filters": list(warnings.filters),
        "signals": [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)],
    }
"""


def test_import_build_and_load_change_no_nni_global(tmp_path: Path) -> None:
    code = (
        _SNAPSHOT
        + f"""
before = snapshot()
import emodarts_nni
from emodarts_nni.space.architecture import sample_architecture, save_architecture
from emodarts_nni.space.model import resolve_space_args
space = emodarts_nni.build_space("emodarts", **{SMALL_SPACE!r})
args = resolve_space_args("emodarts", **{SMALL_SPACE!r})
path = save_architecture(sys.argv[1], args, sample_architecture(args, 0))
model = emodarts_nni.load_architecture(path)
import emodarts_nni.strategy.registry, emodarts_nni.training.module, emodarts_nni.strategy.darts.first_order
after = snapshot()
for key in before:
    assert before[key] == after[key], (key, before[key], after[key])
print("unchanged")
"""
    )
    done = _python(code, str(tmp_path / "arch.json"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unchanged"
    assert "is found to be not a nn.Module" not in done.stderr  # silenced where imported


def test_only_the_harmless_buffer_warning_is_filtered_and_only_locally() -> None:
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_nni_import():
            for name in ("torch.nn.parameter.Buffer", "torch.nn.Unexpected"):
                warnings.warn(
                    f"<class '{name}'> is found to be not a nn.Module", RuntimeWarning, stacklevel=1
                )
        warnings.warn(
            "<class 'torch.nn.parameter.Buffer'> is found to be not a nn.Module",
            RuntimeWarning,
            stacklevel=1,
        )
    assert [str(warning.message) for warning in caught] == [
        "<class 'torch.nn.Unexpected'> is found to be not a nn.Module",
        "<class 'torch.nn.parameter.Buffer'> is found to be not a nn.Module",
    ]
    assert list(warnings.filters) == filters
    assert "Buffer" in BUFFER_WARNING


# ---------------------------------------------------------------------- manager patches


def _patched() -> tuple[object, object, list[object]]:
    import logging

    from nni.experiment import launcher
    from nni.tools.nnictl import config_utils

    return (
        launcher.Popen,
        config_utils.Experiments.__init__,
        list(logging.getLogger("nni.experiment").filters),
        launcher._check_rest_server,
    )


def test_patches_nest_and_are_restored_after(tmp_path: Path) -> None:
    from nni.tools.nnictl import config_utils

    original = _patched()
    with manager_patches(tmp_path / "outer") as outer:
        patched = _patched()
        assert patched[0] is not original[0] and patched[1] is not original[1]
        assert patched[3] is not original[3]
        assert len(patched[2]) == len(original[2]) + 1
        with manager_patches(tmp_path / "inner") as inner:
            assert _patched() == patched  # installed once, not wrapped twice
            config_utils.Experiments().add_experiment("in", 1, 0, "local", "x")
        assert _patched() == patched
        config_utils.Experiments().add_experiment("out", 1, 0, "local", "x")
    assert _patched() == original
    assert set(json.loads((inner.registry_dir / ".experiment").read_text())) == {"in"}
    assert set(json.loads((outer.registry_dir / ".experiment").read_text())) == {"out"}
    with pytest.raises(RuntimeError, match="boom"), manager_patches(tmp_path):
        raise RuntimeError("boom")
    assert _patched() == original


def test_registry_follows_the_scope(tmp_path: Path) -> None:
    from nni.tools.nnictl import config_utils

    with manager_patches(tmp_path) as scope:
        config_utils.Experiments().add_experiment("abc", 1, 0, "local", "x")
    assert scope.registry_dir == tmp_path.resolve() / ".nni-home" / "nni-experiments"
    assert "abc" in json.loads((scope.registry_dir / ".experiment").read_text())


def test_a_block_left_by_an_exception_kills_the_manager_it_started(tmp_path: Path) -> None:
    """NNI's launcher cleans up after an Exception only; Ctrl-C during start-up orphaned it."""
    import nni_node
    from nni.experiment import launcher

    node = str(Path(nni_node.__path__[0]) / "node")
    command = [node, "-e", "setInterval(() => {}, 1000)", "main.js"]  # argv like the manager's
    with pytest.raises(KeyboardInterrupt), manager_patches(tmp_path) as scope:
        process = launcher.Popen(command, preexec_fn=os.setpgrp)
        assert scope.started == [process] and process.poll() is None
        raise KeyboardInterrupt
    assert process.poll() is not None
    with manager_patches(tmp_path) as scope:  # a normal exit leaves it running (a view)
        process = launcher.Popen(command, preexec_fn=os.setpgrp)
    try:
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- interrupts


def test_sigterm_raises_keyboard_interrupt_once_inside_the_block() -> None:
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            _poll(lambda: False, timeout=5)
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # during clean-up: ignored
            time.sleep(0.1)
            raise
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before


def test_a_deferred_interrupt_is_raised_when_the_block_ends() -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            steps.append("finished")
        steps.append("after")  # never reached
    assert steps == ["finished"]


# ------------------------------------------------------------ searches without a manager


def test_one_shot_search_installs_no_patch_and_needs_no_manager_module(tmp_path: Path) -> None:
    """A DARTS search on the toy space in a fresh interpreter, watched from a callback."""
    code = (
        _SNAPSHOT
        + """
import json, pytorch_lightning as pl, toyspace
from emodarts_nni.nni_runtime import run_search
from emodarts_nni.strategy.registry import make_strategy

before, seen = snapshot(), []

class Spy(pl.Callback):
    def on_train_epoch_end(self, trainer, module):
        seen.append(snapshot())

architecture = run_search(
    toyspace.ToySpace(),
    toyspace.make_evaluator(1, callbacks=[Spy()]),
    make_strategy("darts"),
    experiment_dir=sys.argv[1],
)
toyspace.assert_valid_architecture(architecture)
assert len(seen) == 1 and snapshot() == before
for key in before.keys() - {"signals"}:  # Lightning handles SIGTERM while it trains
    assert seen[0][key] == before[key], key
manager_modules = ["nni_node"] + [
    f"emodarts_nni.nni_runtime.{name}" for name in ("launcher", "viewer")
]
print(json.dumps([name for name in manager_modules if name in sys.modules]))
"""
    )
    done = _python(code, str(tmp_path), env={"PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    registry = json.loads((tmp_path / ".nni-home" / "nni-experiments" / ".experiment").read_text())
    assert [entry["status"] for entry in registry.values()] == ["STOPPED"]


# ------------------------------------------------------ multi-trial without the web UI


@pytest.mark.e2e
def test_multi_trial_search_without_web_ui_runs_in_process(tmp_path: Path, cache: Path) -> None:
    from emodarts_nni import load_architecture
    from emodarts_nni.cli.main import main

    config = tiny_config(tmp_path, cache, search={"max_trials": 2})
    out = tmp_path / "random"
    assert main(["run", str(config), "--strategy", "random", "--out", str(out)]) == 0
    load_architecture(out / "architecture.json")
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "random"
    history = (out / "history.csv").read_text().splitlines()
    assert len([row for row in history if row.startswith("search,")]) == 2  # one per trial
    assert not list((out / "nni").glob("*/db/nni.sqlite"))  # NNI's manager never ran
    registry = json.loads(
        (out / "nni" / ".nni-home" / "nni-experiments" / ".experiment").read_text()
    )
    assert [entry["status"] for entry in registry.values()] == ["STOPPED"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


# ------------------------------------------------- SIGTERM / Ctrl-C stop NNI's manager


@pytest.fixture(scope="module")
def stopped_experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-trial NNI experiment to view (its trial runs ``true``)."""
    from nni.tools.nnictl import constants

    root = tmp_path_factory.mktemp("viewed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(root / "home"))
        patch.setattr(constants, "NNI_HOME_DIR", str(root / "home" / "nni-experiments"))
        with launch_trial_experiment(
            ["true"], experiment_dir=root / "run" / "nni", port=free_port(), name="viewed"
        ) as handle:
            assert handle.wait(timeout=DEADLINE, poll_interval=0.2) == "SUCCEEDED"
    return root / "run"


def _node_children(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if "node" in child.name()]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start_cli(args: list[str], home: Path) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "emodarts_nni.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def _interrupt_and_check(
    cli: subprocess.Popen, port: int, signum: int, moment: str
) -> tuple[int, str]:
    """Signal ``cli`` once its manager is starting (or listening); check nothing survives."""
    try:
        if moment == "starting":  # the manager process exists, before it listens
            _poll(lambda: _node_children(cli) or cli.poll() is not None, interval=0.01)
        else:
            _poll(lambda: listening_addresses(port) or cli.poll() is not None)
        managers = _node_children(cli)
        descendants = psutil.Process(cli.pid).children(recursive=True)
        assert cli.poll() is None, cli.communicate()
        assert managers, "no NNI manager was started"
        cli.send_signal(signum)
        _, stderr = cli.communicate(timeout=DEADLINE)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    _poll(lambda: not listening_addresses(port), timeout=30)
    _poll(lambda: not any(_alive(process) for process in descendants), timeout=30)
    return cli.returncode, stderr


@pytest.mark.e2e
@pytest.mark.parametrize("moment", ["starting", "listening"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_view_stops_the_manager_on_a_signal_at_any_moment(
    stopped_experiment: Path, tmp_path: Path, signum: int, moment: str
) -> None:
    port = free_port()
    cli = _start_cli(["view", str(stopped_experiment), "--port", str(port)], tmp_path)
    returncode, stderr = _interrupt_and_check(cli, port, signum, moment)
    assert returncode == 0, stderr
    assert "--resume" not in stderr
    assert not (tmp_path / "nni-experiments").exists()


@pytest.mark.e2e
def test_run_with_web_ui_stops_the_manager_and_its_trial_on_sigterm(
    tmp_path: Path, cache: Path
) -> None:
    config = tiny_config(tmp_path, cache, webui={"enabled": True})
    port = free_port()
    args = ["run", str(config), "--out", str(tmp_path / "run"), "--port", str(port)]
    cli = _start_cli(args, tmp_path / "home")
    returncode, stderr = _interrupt_and_check(cli, port, signal.SIGTERM, "listening")
    assert returncode == 130, stderr
    assert "--resume" in stderr  # a run can be continued


# ------------------------------------------------------------- fail fast on a bad config

_BAD_CONFIG = "name: bad\nsearch:\n  strategy: dartz\n"
_HEAVY = ("torch", "nni", "gym", "tianshou", "pytorch_lightning")


@pytest.mark.parametrize(
    "command",
    [
        ["run", "{config}"],
        ["retrain", "{arch}", "{config}"],
        ["evaluate", "{checkpoint}", "--config", "{config}"],
    ],
)
def test_a_bad_config_fails_before_torch_nni_or_gym_are_imported(
    command: list[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(_BAD_CONFIG)
    paths = {"config": config, "arch": tmp_path / "a.json", "checkpoint": tmp_path / "c.pt"}
    argv = [part.format(**paths) for part in command]
    code = f"""
    import sys
    from emodarts_nni.cli.main import main
    status = main(sys.argv[1:])
    print(status, sorted(name for name in {_HEAVY!r} if name in sys.modules))
    """
    done = _python(code, *argv)
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.count("\n") == 1 and "search.strategy = 'dartz'" in done.stderr
    cli = subprocess.run(
        [sys.executable, "-m", "emodarts_nni.cli.main", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=DEADLINE,
    )
    assert cli.returncode == 2
    assert cli.stderr.startswith("emodarts: error: ") and cli.stderr.count("\n") == 1
    assert "gym" not in cli.stderr.lower()


def test_a_slow_manager_start_is_waited_for(tmp_path: Path) -> None:
    """NNI waits about 3 s for a new manager to answer; the patch waits up to a minute (a
    cold Node.js start on a busy 2-core machine took longer and failed a study)."""
    import http.server
    import threading

    from nni.experiment import launcher

    class CheckStatus(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = b'{"status": "RUNNING"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), CheckStatus, bind_and_activate=False)
    answering = threading.Event()

    def late_start() -> None:
        time.sleep(4.5)  # later than NNI's own ~3 s
        server.server_bind()
        server.server_activate()
        answering.set()
        server.serve_forever(poll_interval=0.1)

    thread = threading.Thread(target=late_start, daemon=True)
    thread.start()
    try:
        with manager_patches(tmp_path):
            launcher._check_rest_server(port)  # returns once the server answers
        assert answering.is_set(), "returned before the manager answered"
    finally:
        if answering.wait(timeout=10):
            server.shutdown()
        thread.join(timeout=10)
        server.server_close()
