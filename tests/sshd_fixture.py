"""A throw-away OpenSSH server on 127.0.0.1 for tests of NNI's ``remote`` training service.

:func:`running_sshd` generates a host key and a client key pair (``ssh-keygen``) in a
folder, writes an ``sshd_config`` that accepts only that client key for the current user,
starts ``/usr/sbin/sshd -D -e`` as a child process on a free port, waits (bounded) until the
port accepts, yields an :class:`SshServer`, and kills the server afterwards. Nothing is
written outside that folder, except ``/run/sshd`` (sshd's compiled-in privilege separation
folder, which it refuses to start without when run as root; Debian's package only creates
it when the system service starts).

Needs Debian's ``openssh-server`` (``.ci/run`` installs it); :func:`sshd_binary` is ``None``
without it, and the tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
#: How long sshd may take to accept connections before the fixture gives up.
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SshServer:
    """Where the test sshd listens and how to log in to it."""

    host: str
    port: int
    user: str
    key_file: Path
    log_file: Path
    #: The sessions' ``HOME`` (NNI's remote side writes ``nni-experiments`` there).
    home: Path


def sshd_binary() -> str | None:
    """The sshd executable, or ``None`` when openssh-server is not installed."""
    found = shutil.which("sshd") or (SSHD if os.access(SSHD, os.X_OK) else None)
    return found if found and shutil.which("ssh-keygen") else None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "emodarts-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _accepts(host: str, port: int) -> bool:
    """Whether an SSH server answers with its banner (a bare TCP accept is not enough)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@contextlib.contextmanager
def running_sshd(
    folder: Path, host: str = "127.0.0.1", environment: Mapping[str, str] | None = None
) -> Iterator[SshServer]:
    """Run a key-only sshd for the current user on ``host``; stop it on exit.

    Sessions get ``HOME=<folder>/home`` and the variables of ``environment`` (what a remote
    machine's own set-up would provide, e.g. ``PYTHONPATH`` to this checkout).
    """
    binary = sshd_binary()
    if binary is None:
        raise RuntimeError("openssh-server is not installed (apt-get install openssh-server)")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    authorized_keys = folder / "authorized_keys"
    shutil.copyfile(client_key.with_suffix(".pub"), authorized_keys)
    authorized_keys.chmod(0o600)
    port = _free_port(host)
    home = folder / "home"
    home.mkdir(exist_ok=True)
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {host}:{port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized_keys}",
                f"PidFile {folder / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                # the key folder lives under a world-writable tmp folder
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {getpass.getuser()}",
                "Subsystem sftp internal-sftp",
                "LogLevel INFO",
                # NNI's remote side keeps its files in ~/nni-experiments: give the test
                # sessions a home folder of their own (sshd applies SetEnv after HOME)
                "SetEnv "
                + " ".join(
                    f'"{name}={value}"'
                    for name, value in {"HOME": home, **(environment or {})}.items()
                ),
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log_file = folder / "sshd.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start on {host}:{port}: {log_file.read_text()}")
            time.sleep(0.1)
        yield SshServer(host, port, getpass.getuser(), client_key, log_file, home)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
