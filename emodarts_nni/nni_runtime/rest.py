"""NNI's REST API (the web UI's own data source) and the port checks around a manager.

NNI's manager is reached at ``http://127.0.0.1:PORT`` (see :mod:`.patches` for why it
listens there only).
"""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.nni_runtime.patches import LOCALHOST

API_PREFIX = "/api/v1/nni"
#: Experiment statuses after which NNI's manager schedules nothing more.
FINISHED_STATUSES = ("DONE", "STOPPED", "ERROR")


def web_url(port: int, host: str = LOCALHOST) -> str:
    """The web UI's address for a manager listening on ``host:port``."""
    shown = LOCALHOST if host in ("", "0.0.0.0", "::") else host
    return f"http://{shown}:{port}"


def rest(
    port: int, api: str, *, host: str = LOCALHOST, method: str = "GET", timeout: float = 10.0
) -> Any:
    """Call NNI's REST API (``/api/v1/nni`` + ``api``); returns the decoded JSON or ``None``."""
    request = urllib.request.Request(f"{web_url(port, host)}{API_PREFIX}{api}", method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


def fetch_status(port: int, host: str = LOCALHOST) -> str:
    """The experiment's status (``RUNNING``, ``NO_MORE_TRIAL``, ``DONE``, ``VIEWED``, ...)."""
    return str(rest(port, "/check-status", host=host)["status"])


def fetch_trial_jobs(port: int, host: str = LOCALHOST) -> list[dict[str, Any]]:
    """The trial jobs as the web UI lists them (``trialJobId``, ``status``, ``hyperParameters``, ...)."""
    return list(rest(port, "/trial-jobs", host=host))


def _decode_metric(data: Any) -> Any:
    """Metric data come JSON-encoded once or twice (the trial dumps, the manager stores)."""
    for _ in range(2):
        if not isinstance(data, str):
            break
        try:
            data = json.loads(data)
        except ValueError:
            break
    return data


def fetch_metrics(port: int, host: str = LOCALHOST) -> list[dict[str, Any]]:
    """Every metric the web UI plots, oldest first.

    Each item: ``trial_id``, ``parameter_id``, ``type`` (``PERIODICAL`` = intermediate, or
    ``FINAL``), ``sequence``, ``timestamp``, ``value`` (a number or a dict) and ``default``
    (the number the UI plots: ``value`` or ``value["default"]``).
    """
    metrics = []
    for item in rest(port, "/metric-data", host=host):
        value = _decode_metric(item.get("data"))
        default = value.get("default") if isinstance(value, dict) else value
        metrics.append(
            {
                "trial_id": item.get("trialJobId"),
                "parameter_id": item.get("parameterId"),
                "type": item.get("type"),
                "sequence": item.get("sequence"),
                "timestamp": item.get("timestamp"),
                "value": value,
                "default": default,
            }
        )
    return sorted(metrics, key=lambda metric: (metric["timestamp"] or 0, metric["sequence"] or 0))


def port_in_use(port: int, host: str = LOCALHOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    address = web_url(port, host).split("//", 1)[1].rsplit(":", 1)[0]
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_free_port(port: int, host: str = LOCALHOST) -> None:
    """Refuse (one-line ConfigError) a port that is no TCP port or already in use."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port (1-65535)")
    if port_in_use(port, host):
        raise ConfigError(
            f"port {port} is in use (another NNI experiment or web UI?); choose another with --port"
        )


__all__ = [
    "API_PREFIX",
    "FINISHED_STATUSES",
    "fetch_metrics",
    "fetch_status",
    "fetch_trial_jobs",
    "port_in_use",
    "require_free_port",
    "rest",
    "web_url",
]
