"""NNI 3.0's ``remote`` training service (SSH machines) on today's stack (``docs/remote.md``).

NNI 3.0 runs a remote experiment's trials through its "v3" remote service: the manager
(Node.js) logs in to every machine with the ``ssh2`` library, starts a trial keeper there
(``python -m nni.tools.nni_manager_scripts.launch_trial_keeper``), uploads the trial code
directory, and the trial keeper dials back to the manager over a WebSocket. Four things in
it do not fit how this project runs NNI; each is fixed by one function below, with the
upstream problem in its docstring:

* :func:`skip_remote_nni_install` -- every machine gets ``pip install nni --upgrade``.
* :func:`trial_python_path` -- ``python_path`` does not reach the trials.
* :func:`manager_tunnel` -- the trial keeper dials the manager's port directly, which a
  manager bound to ``127.0.0.1`` (:mod:`emodarts_nni.nni_runtime.patches`) never accepts from another
  machine; the patch carries that connection through the SSH session instead.
* :func:`bind_trial_keeper_locally` -- each machine's trial keeper listens on all of that
  machine's interfaces.

(NNI 3.0 also cannot upload an empty trial code folder; :func:`configure_remote_experiment`
ships a one-file folder.)

The manager-side fixes are a Node.js preload (``node --require``), like the local patches' preload, written to
``<experiment_working_directory>/.nni-home/remote-preload.js`` and added to the manager's
command only inside :func:`remote_patches` (wrap ``Experiment.start`` with it). Nothing is
changed at import time. :func:`remote_training_service` turns a study's ``training_service``
machines section into NNI's ``RemoteConfig``.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import ConfigError, suggest
from emodarts_nni.nni_runtime.patches import FAKE_HOME, is_manager_command

if TYPE_CHECKING:
    from nni.experiment.config import RemoteConfig

#: Keys of one machine in a study's ``training_service.machine_list`` (NNI's own names).
MACHINE_KEYS = ("host", "port", "user", "ssh_key_file", "python_path")
#: Keys a machine must have.
REQUIRED_MACHINE_KEYS = ("host", "user")
#: NNI's default SSH key when a machine names none.
DEFAULT_SSH_KEY = "~/.ssh/id_rsa"
#: NNI training services a launcher accepts (NNI's own names).
PLATFORMS = ("local", "remote")
#: Folder, inside the experiment working directory, uploaded as a remote trial's code.
REMOTE_CODE_DIR = "remote-trial-code"
#: The one file in it (NNI 3.0 cannot upload an empty folder).
REMOTE_CODE_NOTE = "README.txt"
#: The interpreter a remote trial command starts with: found through ``python_path``.
REMOTE_PYTHON = "python3"
#: File name of the manager preload, beside the local patches' in ``<working dir>/.nni-home``.
PRELOAD_NAME = "remote-preload.js"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ------------------------------------------------------------------------- config


def _machine_config(index: int, machine: Any, base_dir: Path) -> dict[str, Any]:
    where = f"training_service.machine_list[{index}]"
    if not isinstance(machine, Mapping):
        raise ConfigError(f"{where} must be a mapping of {', '.join(MACHINE_KEYS)}")
    for key in machine:
        if key not in MACHINE_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{suggest(str(key), MACHINE_KEYS)}")
    for key in REQUIRED_MACHINE_KEYS:
        if not isinstance(machine.get(key), str) or not machine[key]:
            raise ConfigError(f"{where}.{key} is required (a non-empty string)")
    port = machine.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}.port must be a TCP port (1-65535), got {port!r}")
    key_file = Path(str(machine.get("ssh_key_file", DEFAULT_SSH_KEY))).expanduser()
    key_file = key_file if key_file.is_absolute() else base_dir / key_file
    if not key_file.is_file():
        raise ConfigError(f"{where}.ssh_key_file: no such file: {key_file}")
    python_path = machine.get("python_path")
    if python_path is not None and (not isinstance(python_path, str) or not python_path):
        raise ConfigError(f"{where}.python_path must be a folder path (the remote bin folder)")
    return {
        "host": machine["host"],
        "port": port,
        "user": machine["user"],
        "ssh_key_file": str(key_file.resolve()),
        "python_path": python_path,
    }


def remote_training_service(
    machines: Sequence[Mapping[str, Any]],
    *,
    base_dir: Path | str = ".",
    trial_gpu_number: int | None = None,
) -> RemoteConfig:
    """NNI's ``RemoteConfig`` for ``machines`` (a study's ``training_service.machine_list``).

    Each machine is ``{host, user, port (22), ssh_key_file (~/.ssh/id_rsa, relative to
    base_dir), python_path (the remote folder holding python3, e.g. a venv's bin)}``; an
    unknown key, a missing host/user, a bad port or a missing key file raises a one-line
    :class:`ConfigError` naming it. Uses NNI 3.0's default (non-reuse, "v3") service, which
    the patches of :func:`remote_patches` carry; run ``Experiment.start`` inside them. Set
    it as ``Experiment('remote').config.training_service``.
    """
    from nni.experiment.config import RemoteConfig, RemoteMachineConfig

    if isinstance(machines, (str, bytes, Mapping)) or not isinstance(machines, Sequence):
        raise ConfigError("training_service.machine_list must be a list of machines")
    if not machines:
        raise ConfigError("training_service.machine_list is empty: name at least one SSH machine")
    base = Path(base_dir).expanduser().resolve()
    machine_list = [
        RemoteMachineConfig(**_machine_config(index, machine, base))
        for index, machine in enumerate(machines)
    ]
    config = RemoteConfig(
        machine_list=machine_list,
        reuse_mode=False,
        # the trial keepers reach the manager through manager_tunnel's forward, which listens
        # on each machine's loopback; NNI builds the trial keeper's channel URL from this
        nni_manager_ip="127.0.0.1",
    )
    if trial_gpu_number is not None:  # else NNI copies the experiment's own setting
        config.trial_gpu_number = trial_gpu_number
    return config


def check_reachable(machines: Sequence[Mapping[str, Any]], timeout: float = 5.0) -> None:
    """Raise a one-line :class:`ConfigError` for the first machine whose SSH port does not
    accept a TCP connection within ``timeout`` seconds.

    NNI's manager would otherwise fail to start with two chained tracebacks and the cause
    only in ``nnimanager.log``; a short connect says it before anything starts.
    """
    import socket

    for machine in machines:
        host, port = str(machine["host"]), int(machine.get("port", 22))
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {timeout:g} s"
            raise ConfigError(
                f"cannot reach remote machine {host}:{port}: {reason} "
                "(training_service.machine_list; see docs/remote.md)"
            ) from None


def remote_trial_command(command: Sequence[str | Path]) -> list[str]:
    """``command`` for a remote machine: a leading local ``sys.executable`` becomes ``python3``.

    The local interpreter's path means nothing on another machine; ``python3`` is found
    through the machine's ``python_path`` (see :func:`trial_python_path`).
    """
    parts = [str(part) for part in command]
    if parts and Path(parts[0]) == Path(sys.executable):
        parts[0] = REMOTE_PYTHON
    return parts


def check_platform(platform: str, machines: Sequence[Mapping[str, Any]] = ()) -> None:
    """Raise a one-line :class:`ConfigError` unless ``platform`` is one of :data:`PLATFORMS`.

    For ``remote`` the ``machines`` are validated too (:func:`remote_training_service`), so
    a launcher can refuse a bad section before it creates anything.
    """
    if platform not in PLATFORMS:
        raise ConfigError(
            f"training service platform {platform!r} is not supported{suggest(platform, PLATFORMS)}"
        )
    if platform == "remote":
        remote_training_service(machines)


def configure_remote_experiment(
    config: Any, machines: Sequence[Mapping[str, Any]], trial_command: Sequence[str | Path]
) -> None:
    """Point an NNI ``ExperimentConfig`` (with its working directory set) at SSH ``machines``.

    Sets the training service (:func:`remote_training_service`), the trial command for a
    remote interpreter (:func:`remote_trial_command`) and, as the code directory NNI uploads
    to every machine, an empty folder: the experiment's own folder (a local trial's code
    directory) holds NNI's database and logs, which must not be shipped. The folder holds
    one small file, because NNI 3.0 cannot upload an empty one: its ``tar`` call fails with
    "no files or directories specified" and the manager shuts the experiment down. Trials
    find their run folders by absolute path, so those must be on a file system the
    machines share.
    """
    config.training_service = remote_training_service(machines)
    config.trial_command = shlex.join(remote_trial_command(trial_command))
    code = Path(config.experiment_working_directory) / REMOTE_CODE_DIR
    code.mkdir(parents=True, exist_ok=True)
    (code / REMOTE_CODE_NOTE).write_text(
        "Uploaded by NNI to every remote machine as the trial's working directory; the\n"
        "trials themselves read and write their run folders by absolute path.\n"
    )
    config.trial_code_directory = code


# ------------------------------------------------------------------ manager patches

_PRELOAD_HEADER = """\
// Written by emodarts_nni.nni_runtime.remote (docs/remote.md): patches NNI 3.0's remote ("v3")
// training service inside the manager process. One block per Python function of that module.
'use strict';
const Module = require('module');
const net = require('net');
const MANAGER_HOST = %(manager_host)s;
const patches = {};  // resolved file name suffix -> function(exports)
const patched = new Set();
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exports = load.apply(this, arguments);
  let file;
  try { file = Module._resolveFilename(request, parent, isMain); } catch (e) { return exports; }
  for (const [suffix, patch] of Object.entries(patches)) {
    if (file.endsWith(suffix) && !patched.has(file)) {
      patched.add(file);
      patch(exports);
    }
  }
  return exports;
};
const shellQuote = (text) => "'" + String(text).replace(/'/g, "'\\\\''") + "'";
const chain = (suffix, patch) => {
  const previous = patches[suffix];
  patches[suffix] = previous ? (exports) => { previous(exports); patch(exports); } : patch;
};
"""


def skip_remote_nni_install() -> str:
    """New: NNI 3.0 runs ``python -m pip install nni --upgrade`` on every remote machine.

    ``Worker.start`` (``nni_node/training_service/remote_v3/worker.js``) upgrades NNI in the
    machine's Python before every experiment: it needs the package index (offline machines
    and CI sandboxes fail the whole experiment with "SSH command failed"), it may replace
    the NNI this project pins (3.0, with its compatibility patches) and it takes seconds
    per machine. The patch turns that one command into ``python -c "import nni"``, so a
    machine without NNI still fails at once and NNI's own version comparison (local vs
    remote, logged on mismatch) still runs. Returns the preload's JavaScript.
    """
    return r"""
chain('training_service/remote_v3/ssh.js', (exports) => {
  const run = exports.Ssh.prototype.run;
  exports.Ssh.prototype.run = function (command, ...rest) {
    const install = / -m pip install nni --upgrade$/;
    if (typeof command === 'string' && install.test(command)) {
      command = command.replace(install, ' -c "import nni"');
    }
    return run.call(this, command, ...rest);
  };
});
"""


def trial_python_path() -> str:
    """New: a machine's ``python_path`` reaches NNI's own commands but not the trials.

    NNI puts ``python_path`` first in ``PATH`` only for the commands it runs over SSH
    (``PATH="..." python -m ...``). The trial keeper starts each trial with ``/bin/bash -c``
    and an environment inherited from the SSH session; because ``SSH_CLIENT`` is set, bash
    sources the user's ``~/.bashrc``, and any ``PATH`` set-up there (pyenv shims, conda)
    goes in front of ``python_path``: the trial runs another Python (observed: "No module
    named 'nni'"). The patch prefixes each trial command, on machines with a
    ``python_path``, with ``export PATH=<python_path>:"$PATH";`` (POSIX machines). Returns
    the preload's JavaScript.
    """
    return r"""
chain('training_service/remote_v3/remote.js', (exports) => {
  const createTrial = exports.RemoteTrainingServiceV3.prototype.createTrial;
  exports.RemoteTrainingServiceV3.prototype.createTrial = function (envId, command, ...rest) {
    const worker = this.workersByEnv.get(envId);
    const pythonPath = worker && worker.config.pythonPath;
    if (pythonPath) {
      command = `export PATH=${shellQuote(pythonPath)}:"$PATH"; ${command}`;
    }
    return createTrial.call(this, envId, command, ...rest);
  };
});
"""


def manager_tunnel() -> str:
    """New: remote trial keepers must dial the manager's port, so it cannot stay on loopback.

    Each machine's trial keeper opens a WebSocket to ``ws://<nni_manager_ip>:<port>``, i.e.
    the manager must listen on an address every machine can reach (NNI's default is every
    interface, and the REST API it exposes there can stop experiments and kill trials).
    :mod:`emodarts_nni.nni_runtime.patches` binds the manager to ``127.0.0.1``, which only a trial keeper
    on the same host can reach. The patch asks each machine's SSH server to forward a port
    on the machine's own loopback back through the SSH session the manager already holds
    (``ssh -R 127.0.0.1:0:...``, via ``ssh2``'s ``forwardIn``) and gives the trial keeper
    ``ws://127.0.0.1:<forwarded port>/...`` instead: the manager stays on ``127.0.0.1`` and
    remote machines still reach it. The SSH server must allow TCP forwarding
    (``AllowTcpForwarding``, on by default). Returns the preload's JavaScript.
    """
    return r"""
chain('training_service/remote_v3/ssh.js', (exports) => {
  const connect = exports.Ssh.prototype.connect;
  exports.Ssh.prototype.connect = async function (...args) {
    await connect.apply(this, args);
    const client = this.client;
    const managerPort = Number(global.nni.args.port);
    const target = ['0.0.0.0', '::', ''].includes(MANAGER_HOST) ? '127.0.0.1' : MANAGER_HOST;
    this.emodartsTunnelPort = await new Promise((resolve, reject) => {
      client.forwardIn('127.0.0.1', 0, (error, port) => (error ? reject(error) : resolve(port)));
    });
    const tunnelPort = this.emodartsTunnelPort;
    client.on('tcp connection', (info, accept, reject) => {
      if (info.destPort !== tunnelPort) { reject(); return; }
      const socket = net.connect(managerPort, target);
      socket.once('error', () => reject());
      socket.once('connect', () => {
        const stream = accept();
        stream.on('error', () => socket.destroy());
        socket.on('error', () => stream.close());
        stream.pipe(socket).pipe(stream);
      });
    });
  };
});
chain('training_service/remote_v3/worker.js', (exports) => {
  const launch = exports.Worker.prototype.launchTrialKeeperDaemon;
  exports.Worker.prototype.launchTrialKeeperDaemon = function (...args) {
    const port = this.ssh.emodartsTunnelPort;
    if (port) {
      this.channelUrl = this.channelUrl.replace(/^(wss?:\/\/)[^/]+/, `$1127.0.0.1:${port}`);
    }
    return launch.apply(this, args);
  };
});
"""


#: Node.js preload the trial keeper on each machine starts with (see bind_trial_keeper_locally).
_KEEPER_PRELOAD = """\
// Written by emodarts_nni.nni_runtime.remote (docs/remote.md): NNI 3.0's trial keeper listens on
// every interface of this machine; its trials reach it on localhost only.
'use strict';
delete process.env.NODE_OPTIONS;  // trials inherit this environment
const net = require('net');
const ANY = new Set(['0.0.0.0', '::', '']);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^[0-9]+$/.test(first))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
    else if (ANY.has(args[1])) args[1] = '127.0.0.1';
  } else if (first && typeof first === 'object' && 'port' in first && !first.path) {
    if (first.host === undefined || ANY.has(first.host)) args[0] = { ...first, host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
"""


def bind_trial_keeper_locally() -> str:
    """New: the trial keeper on every machine listens on all of that machine's interfaces.

    NNI's trial keeper (``nni_node/common/trial_keeper``, started from the machine's own
    NNI) serves its trials' HTTP channel with ``app.listen(port)`` and no host
    (``rest_server/core.js``), so any host that can reach the machine can send it
    commands; the trials only ever use ``http://localhost:<port>``. The patch writes a small
    Node.js preload next to the trial keeper's files on the machine (over the SSH session's
    SFTP) and starts ``launch_trial_keeper`` with ``NODE_OPTIONS=--require=<it>``; the
    preload binds the keeper's listening sockets to ``127.0.0.1`` and removes
    ``NODE_OPTIONS`` again, so trials do not inherit it (POSIX machines). Returns the
    manager preload's JavaScript.
    """
    return (
        "\nconst KEEPER_PRELOAD = "
        + json.dumps(_KEEPER_PRELOAD)
        + r""";
chain('training_service/remote_v3/ssh.js', (exports) => {
  const run = exports.Ssh.prototype.run;
  exports.Ssh.prototype.run = async function (command, ...rest) {
    const launch = / -m nni\.tools\.nni_manager_scripts\.launch_trial_keeper (\S+)$/;
    const match = typeof command === 'string' ? command.match(launch) : null;
    if (match) {
      const preload = `${match[1]}/emodarts-keeper-preload.js`;
      await this.writeFile(preload, KEEPER_PRELOAD);
      command = `NODE_OPTIONS=${shellQuote('--require=' + preload)} ${command}`;
    }
    return run.call(this, command, ...rest);
  };
});
"""
    )


#: The manager-side patches, in the order they are installed.
MANAGER_PATCHES = (
    skip_remote_nni_install,
    trial_python_path,
    manager_tunnel,
    bind_trial_keeper_locally,
)


def preload_source(manager_host: str) -> str:
    """The JavaScript of the manager preload: every function of :data:`MANAGER_PATCHES`."""
    header = _PRELOAD_HEADER % {"manager_host": json.dumps(manager_host)}
    return header + "".join(patch() for patch in MANAGER_PATCHES)


def _write_preload(experiments_directory: Path, manager_host: str) -> Path:
    folder = Path(experiments_directory) / FAKE_HOME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PRELOAD_NAME
    source = preload_source(manager_host)
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    return path


@contextlib.contextmanager
def remote_patches(manager_host: str = "127.0.0.1") -> Iterator[None]:
    """Within this scope, an NNI manager that starts gets the remote-service patches.

    Wraps ``nni.experiment.launcher.Popen`` (restored on exit): the manager's ``node``
    command gets ``--require <working dir>/.nni-home/remote-preload.js``, whose patches
    (:data:`MANAGER_PATCHES`) live as long as that manager. ``manager_host`` is where the
    manager listens (the :func:`emodarts_nni.nni_runtime.manager_patches` host), the target of
    :func:`manager_tunnel`. Wrap ``Experiment.start`` of a remote experiment with it.
    """
    from nni.experiment import launcher

    original = launcher.Popen

    def popen(command: Any, *args: Any, **kwargs: Any) -> subprocess.Popen:
        if is_manager_command(command):
            parts = [str(part) for part in command]
            if "--experiments-directory" in parts[:-1]:
                directory = Path(parts[parts.index("--experiments-directory") + 1])
                preload = _write_preload(directory, manager_host)
                command = [command[0], "--require", str(preload), *command[1:]]
        return original(command, *args, **kwargs)

    launcher.Popen = popen  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        launcher.Popen = original  # type: ignore[misc]


__all__ = [
    "MACHINE_KEYS",
    "MANAGER_PATCHES",
    "PLATFORMS",
    "bind_trial_keeper_locally",
    "check_platform",
    "check_reachable",
    "configure_remote_experiment",
    "manager_tunnel",
    "preload_source",
    "remote_patches",
    "remote_trial_command",
    "remote_training_service",
    "skip_remote_nni_install",
    "trial_python_path",
]
