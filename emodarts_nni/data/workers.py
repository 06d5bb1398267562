"""Worker processes for data preparation that die with the process that started them.

``kill -9`` of ``emodarts features --workers 2`` used to leave its workers extracting for
minutes. Every worker here asks Linux to SIGKILL it as soon as its parent dies
(``prctl(PR_SET_PDEATHSIG)``) and, where that is unavailable, a watcher thread ends it
within a second of noticing its parent is gone. Ctrl-C is left to the parent (which
cancels the queued work); workers ignore SIGINT, so one key press does not print a
traceback per worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_WATCH_SECONDS = 1.0


def _die_with(parent: int) -> None:
    """Initializer of every worker: end this process when ``parent`` ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        # Without prctl (an unusual libc) the watcher thread below still ends the worker.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while True:
        time.sleep(_WATCH_SECONDS)
        if os.getppid() != parent:  # re-parented: the parent is gone
            os._exit(1)


def parallel_map(
    function: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    workers: int,
    on_result: Callable[[int, Any], None],
) -> None:
    """Run ``function(*calls[i])`` in ``workers`` fresh processes; call
    ``on_result(i, result)`` in the parent as each finishes (in completion order).

    ``function`` must be importable (a module-level function). The first exception of a
    call is raised here after the queued calls are cancelled; the calls already running
    finish first, so what they write stays whole. Workers are started with ``spawn`` (no
    inherited threads or locks) and die with this process, even on ``kill -9``.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with,
        initargs=(os.getpid(),),
    )
    try:
        index = {pool.submit(function, *args): i for i, args in enumerate(calls)}
        pending = set(index)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_result(index[future], future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["parallel_map"]
