"""Ctrl-C, SIGTERM and SIGHUP as one clean interruption while NNI's manager may be running.

NNI's manager is a Node.js process in its own process group, so neither a terminal's Ctrl-C
(or hang-up) nor a ``kill`` of our process reaches it: our process has to stop it on the way
out. Python turns SIGINT into ``KeyboardInterrupt`` but SIGTERM and SIGHUP (a closed terminal
or SSH session) end the interpreter at once, skipping every ``finally`` and ``atexit`` hook,
which left the manager, its dispatcher and the trials running under PID 1.
:func:`terminate_as_interrupt` makes all three signals raise ``KeyboardInterrupt`` once (later ones are ignored so the clean-up itself is not
interrupted), and :func:`deferred_interrupts` holds a signal back over the few statements
that start a manager and record it, so the process is never started without being known.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals that stop a command (Ctrl-C, ``kill``, a closed terminal).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _State:
    """Signal bookkeeping of this process (signal handlers are process-wide by nature)."""

    active = 0  # nesting depth of terminate_as_interrupt
    raised = False  # KeyboardInterrupt already raised in the current outermost block
    deferring = 0  # nesting depth of deferred_interrupts
    pending = False  # a signal arrived while deferring


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.raised:
        return  # clean-up after the first signal is running; let it finish
    if _State.deferring:
        _State.pending = True
        return
    _State.raised = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` (once); restored after.

    Only the main thread can install signal handlers; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    if _State.active == 0:
        _State.raised = False
    _State.active += 1
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        _State.active -= 1
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back a stop signal (under :func:`terminate_as_interrupt`) until the block ends."""
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
        if not _State.deferring and _State.pending:
            _State.pending = False
            if _State.active and not _State.raised:
                _State.raised = True
                raise KeyboardInterrupt


__all__ = ["STOP_SIGNALS", "deferred_interrupts", "terminate_as_interrupt"]
