"""NNI's runtime behind one door: everything that starts, feeds, views or stops NNI's manager.

=================  ========================================================================
module             what it owns
=================  ========================================================================
``patches``        the documented NNI 3.0 patches, installed only inside
                   :func:`manager_patches` (restored after); :func:`quiet_nni_import`
``interrupts``     Ctrl-C and SIGTERM as one clean ``KeyboardInterrupt`` while a manager runs
``guards``         checks that refuse what NNI 3.0 cannot do (ENAS, Proxyless on cells)
``rest``           NNI's REST API (the web UI's data) and port checks
``nas``            a ``NasExperiment`` in the run folder: one-shot and in-process multi-trial
                   searches without a manager, multi-trial ones through it
``launcher``       a one-trial (grid, or listed trials) ``Experiment('local')`` running a command
``tuner``          the tuner that hands NNI a fixed list of flat trial parameter sets (a
                   study's cells), imported by NNI's dispatcher, never by this package
``reporter``       :class:`TrialReporter`, the trial side of that experiment
``viewer``         reopen a stopped experiment's web UI read-only, and stop it
=================  ========================================================================

Importing this package imports neither NNI nor torch and changes nothing: each name below
loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emodarts_nni.nni_runtime.guards import enas_supported, proxyless_cell_guard
    from emodarts_nni.nni_runtime.interrupts import deferred_interrupts, terminate_as_interrupt
    from emodarts_nni.nni_runtime.launcher import ExperimentHandle, launch_trial_experiment
    from emodarts_nni.nni_runtime.nas import (
        configure_nas_experiment,
        final_metrics,
        run_search,
        running_nas_experiment,
        uses_manager,
    )
    from emodarts_nni.nni_runtime.patches import (
        FAKE_HOME,
        LOCALHOST,
        manager_patches,
        quiet_nni_import,
        registry_dir,
    )
    from emodarts_nni.nni_runtime.reporter import TrialReporter
    from emodarts_nni.nni_runtime.rest import (
        fetch_metrics,
        fetch_status,
        fetch_trial_jobs,
        web_url,
    )
    from emodarts_nni.nni_runtime.viewer import (
        find_experiment,
        stop_experiment,
        stop_views,
        view_experiment,
    )

_LAZY = {
    "enas_supported": "guards",
    "proxyless_cell_guard": "guards",
    "deferred_interrupts": "interrupts",
    "terminate_as_interrupt": "interrupts",
    "ExperimentHandle": "launcher",
    "launch_trial_experiment": "launcher",
    "configure_nas_experiment": "nas",
    "final_metrics": "nas",
    "run_search": "nas",
    "running_nas_experiment": "nas",
    "uses_manager": "nas",
    "FAKE_HOME": "patches",
    "LOCALHOST": "patches",
    "manager_patches": "patches",
    "quiet_nni_import": "patches",
    "registry_dir": "patches",
    "TrialReporter": "reporter",
    "fetch_metrics": "rest",
    "fetch_status": "rest",
    "fetch_trial_jobs": "rest",
    "web_url": "rest",
    "find_experiment": "viewer",
    "stop_experiment": "viewer",
    "stop_views": "viewer",
    "view_experiment": "viewer",
}

__all__ = [
    "ExperimentHandle",
    "FAKE_HOME",
    "LOCALHOST",
    "TrialReporter",
    "configure_nas_experiment",
    "deferred_interrupts",
    "enas_supported",
    "fetch_metrics",
    "fetch_status",
    "fetch_trial_jobs",
    "final_metrics",
    "find_experiment",
    "launch_trial_experiment",
    "manager_patches",
    "proxyless_cell_guard",
    "quiet_nni_import",
    "registry_dir",
    "run_search",
    "running_nas_experiment",
    "stop_experiment",
    "stop_views",
    "terminate_as_interrupt",
    "uses_manager",
    "view_experiment",
    "web_url",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
