"""The trial side of the web UI bridge: report an in-process search's metrics to NNI.

A one-shot search runs in-process inside an NNI trial (see :mod:`.launcher`); its
``NasExperiment`` replaces NNI's trial command channel with an in-process one, so the
reporter takes the real channel first (nni-notes #2). What is reported, and when, is the
pipeline's choice: :class:`emodarts_nni.pipeline.run.RunContext` sends each epoch's
validation UA as it writes ``history.csv``, and the evaluate stage the final test UA.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from emodarts_nni.nni_runtime.patches import quiet_nni_import


class TrialReporter:
    """Report metrics of an in-process search to the NNI trial this process runs as.

    Create it first thing in the trial, before any ``NasExperiment`` runs: a running
    ``NasExperiment`` replaces NNI's trial command channel with its in-process one, so
    ``nni.report_*`` would no longer reach the web UI (nni-notes #2). The reporter keeps the
    real channel and takes the trial's parameters (:attr:`parameters`) from it; do not also
    call ``nni.get_next_parameter()``.

    Outside NNI (a plain local run, a test) it is inactive: reports are only recorded in
    :attr:`history`.
    """

    def __init__(self) -> None:
        with quiet_nni_import():
            from nni.nas.execution.sequential import SequentialTrialCommandChannel
            from nni.runtime.trial_command_channel import get_default_trial_command_channel

        self.trial_id: str | None = os.environ.get("NNI_TRIAL_JOB_ID")
        self.experiment_id: str | None = os.environ.get("NNI_EXP_ID")
        platform = os.environ.get("NNI_PLATFORM")
        self.active: bool = bool(self.trial_id) and platform not in (None, "", "unittest")
        self.parameters: dict[str, Any] = {}
        self.history: list[tuple[str, dict[str, Any]]] = []
        self._sequence = 0
        self._parameter_id: int | None = None
        self._channel: Any = None
        if not self.active:
            return
        channel = get_default_trial_command_channel()
        if isinstance(channel, SequentialTrialCommandChannel):
            raise RuntimeError("create TrialReporter before running a NasExperiment in-process")
        self._channel = channel
        record = channel.receive_parameter()
        if record is not None:
            self._parameter_id = record.get("parameter_id")
            self.parameters = dict(record.get("parameters") or {})

    @property
    def last_value(self) -> float | None:
        """The ``default`` of the latest report (intermediate or final), if any."""
        return self.history[-1][1]["default"] if self.history else None

    def _send(self, kind: str, value: float, extra: Mapping[str, Any]) -> dict[str, Any]:
        metric = {"default": float(value), **{str(k): _jsonable(v) for k, v in extra.items()}}
        self.history.append((kind, metric))
        if self._channel is not None:
            self._channel.send_metric(
                type=kind,
                parameter_id=self._parameter_id,
                trial_job_id=self.trial_id,
                sequence=self._sequence if kind == "PERIODICAL" else 0,
                value=metric,
            )
        if kind == "PERIODICAL":
            self._sequence += 1
        return metric

    def report_intermediate(self, value: float, **extra: Any) -> dict[str, Any]:
        """Send a per-epoch metric: ``{"default": value, **extra}`` (the UI plots ``default``)."""
        return self._send("PERIODICAL", value, extra)

    def report_final(self, value: float, **extra: Any) -> dict[str, Any]:
        """Send the trial's final metric: ``{"default": value, **extra}``."""
        return self._send("FINAL", value, extra)


def architecture_fields(
    architecture: str | os.PathLike | Mapping[str, Any], parameters: int | None = None
) -> dict[str, Any]:
    """Extras for a trial's final result in the web UI: what the search found.

    ``architecture``: the cells as one line of text (``normal: 2←sep_conv_3x3(1)+… |
    reduce: … | seq: …``, :func:`~emodarts_nni.space.architecture.describe`); ``parameters``: the
    frozen model's trainable parameters (counted by building it when not given).
    ``architecture`` is an architecture JSON's path or its document.
    """
    from emodarts_nni.space.architecture import describe, load_architecture, read_architecture

    arch_file = read_architecture(architecture)
    if parameters is None:
        parameters = int(load_architecture(architecture).num_parameters)
    text = " | ".join(
        describe(arch_file.architecture, arch_file.space.get("readouts")).splitlines()
    )
    return {"architecture": text, "parameters": int(parameters)}


def _jsonable(value: Any) -> Any:
    """Tensors and numpy scalars as floats; everything else as JSON would take it."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


__all__ = ["TrialReporter", "architecture_fields"]
