"""Third-party chatter goes to the run's ``log.txt``, not the console (``--verbose`` keeps it).

What reached a user's console on a plain ``emodarts run``: Gym's deprecation banner (printed
to stderr when NNI's RL strategies import ``gym``), Lightning's ``GPU available: …`` lines,
NNI's INFO/WARNING lines (``training_service will be ignored…``, ``Sorted weights in
differentiable cell export…``) and library ``FutureWarning``\\ s. :func:`to_log` diverts
them for the duration of a command: NNI's and Lightning's console handlers are detached,
``warnings`` are captured into logging, and the Gym banner is caught on import. Records made
before a run folder exists wait in memory and are written into its ``log.txt`` when
:meth:`~emodarts_nni.pipeline.runfolder.RunFolder.logging_to_log` opens it. Everything is
put back when the block ends: the library itself changes no global state on import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
from collections.abc import Iterator

#: The loggers whose records belong in ``log.txt`` (besides ``emodarts``'s own).
LOGGERS = (
    "nni",
    "pytorch_lightning",
    "lightning_fabric",
    "lightning.pytorch",
    "lightning.fabric",
    "py.warnings",
    "emodarts.thirdparty",
)
#: Most records kept while no run folder is open (later ones are dropped).
_PENDING_LIMIT = 2000


class _Pending(logging.Handler):
    """Keeps records until a run folder's log handler takes them (:func:`replay_pending`)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < _PENDING_LIMIT:
            self.records.append(record)


_pending: _Pending | None = None


def replay_pending(handler: logging.Handler) -> None:
    """Write the records kept since :func:`to_log` began into ``handler`` (once)."""
    if _pending is None:
        return
    records, _pending.records = _pending.records, []
    for record in records:
        handler.handle(record)


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [
        h
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


def _quiet_gym_import() -> None:
    """Import ``gym`` (if installed and not yet imported) with its stderr banner logged."""
    if "gym" in sys.modules or importlib.util.find_spec("gym") is None:
        return
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        import gym  # noqa: F401
    for line in buffer.getvalue().splitlines():
        if line.strip():
            logging.getLogger("emodarts.thirdparty").info("gym: %s", line)


@contextlib.contextmanager
def to_log(verbose: bool = False) -> Iterator[None]:
    """Divert third-party console output into logging (and so ``log.txt``) meanwhile;
    ``verbose`` leaves everything as it is."""
    global _pending
    if verbose:
        yield
        return
    # NNI's stdout handler sits on its "nni" logger once nni is imported: import it here, so
    # that it is there to detach (every command that reaches this imports NNI anyway).
    from emodarts_nni.nni_runtime.patches import quiet_nni_import

    with quiet_nni_import():
        import nni  # noqa: F401
    import pytorch_lightning  # noqa: F401  (its console handler is added on import)

    detached: list[tuple[logging.Logger, logging.Handler]] = []
    pending = _Pending()
    previous_pending, _pending = _pending, pending
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = {}
    for logger in loggers:
        for handler in _console_handlers(logger):
            logger.removeHandler(handler)
            detached.append((logger, handler))
        logger.addHandler(pending)
    thirdparty = logging.getLogger("emodarts.thirdparty")
    levels[thirdparty] = (thirdparty.level, thirdparty.propagate)
    thirdparty.setLevel(logging.INFO)
    thirdparty.propagate = False
    warnings_logger = logging.getLogger("py.warnings")
    levels[warnings_logger] = (warnings_logger.level, warnings_logger.propagate)
    warnings_logger.propagate = False  # not to the root logger's console handler, if any
    # logging keeps whether it captures warnings in a private attribute
    was_capturing = getattr(logging, "_warnings_showwarning", None) is not None
    logging.captureWarnings(True)
    try:
        _quiet_gym_import()
        yield
    finally:
        if not was_capturing:
            logging.captureWarnings(False)
        for logger in loggers:
            logger.removeHandler(pending)
        for logger, handler in detached:
            logger.addHandler(handler)
        for logger, (level, propagate) in levels.items():
            logger.setLevel(level)
            logger.propagate = propagate
        _pending = previous_pending


__all__ = ["LOGGERS", "replay_pending", "to_log"]
