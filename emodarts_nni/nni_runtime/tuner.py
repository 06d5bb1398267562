"""A tuner that hands NNI's trials a fixed list of flat parameter sets, in order.

NNI's web UI shows a trial's parameters as one column per search-space key, and a dict
value as ``[object Object]``. A study's cells used to travel as one grid key (``cell``) whose
values were dicts, so no row of the trial table could be told from another. With this tuner
every cell is a flat set of scalars (``cell``, ``arm``, ``corpus``, ``fold``, ``scope``,
``strategy``, ``seed``): the search space declares each key (so the table has a column for
it), and the tuner emits exactly the listed combinations, where NNI's grid search would
cross them. NNI's dispatcher imports this module by name
(:func:`emodarts_nni.nni_runtime.launcher.launch_trial_experiment` with ``trials=``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import nni
from nni.tuner import Tuner


def declared_space(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The search space NNI records for ``trials``: a ``choice`` per key over its values in
    order of first appearance (what the web UI builds its parameter columns from)."""
    space: dict[str, list[Any]] = {}
    for trial in trials:
        for key, value in trial.items():
            values = space.setdefault(str(key), [])
            if value not in values:
                values.append(value)
    return {key: {"_type": "choice", "_value": values} for key, values in space.items()}


class ListTuner(Tuner):
    """Emit ``trials`` one after another; then NNI's "no more trials"."""

    def __init__(self, trials: Sequence[Mapping[str, Any]]) -> None:
        self.trials = [dict(trial) for trial in trials]
        self._next = 0

    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        """The space only declares the columns; the trials are the list."""

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        """The next listed parameter set."""
        if self._next >= len(self.trials):
            raise nni.NoMoreTrialError("every listed trial has been handed out")
        self._next += 1
        return dict(self.trials[self._next - 1])

    def receive_trial_result(
        self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any
    ) -> None:
        """Results change nothing: the list is fixed."""


__all__ = ["ListTuner", "declared_space"]
