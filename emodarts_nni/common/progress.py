"""Progress lines: what a run is doing, at least every :data:`INTERVAL_SECONDS`, from its start.

One format for every stage (corpus, features, search, retrain, evaluate)::

    [0:42] search   epoch 2/10  batch 5/9  loss 1.382  val UA 0.413  ETA 3:10

A run writes them to a *sink*: the console when it runs in-process (``--no-webui``), or the
run folder's ``progress.log`` when it runs as an NNI trial, which the ``emodarts`` process
that launched it follows and prints with its own clock (so the console reads the same in
both modes, timed from the command's start). The
sink is set for the duration of a run with :func:`reporting_to`; code anywhere in the run
writes through :func:`current` without passing it along. Torch-free.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emodarts_nni.common.units import format_seconds

#: Seconds between two progress lines while work goes on (batch lines, counts).
INTERVAL_SECONDS = 5.0
#: Seconds without a line after which a heartbeat says the step still runs (a slow batch,
#: the search's scoring and export): so the console is never silent for 10 s.
HEARTBEAT_SECONDS = 7.0
#: Width of the stage column.
_STAGE_WIDTH = 8
#: When this module was first imported: the console's clock starts here (the ``emodarts``
#: command imports it first thing, so its lines are timed from the command's start).
PROCESS_STARTED = time.monotonic()


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) of a duration, as the progress lines show elapsed time."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Writes progress lines to ``sink`` (one line each), stamped with the time since
    ``started``, and remembers when it last wrote (so callers can throttle)."""

    def __init__(
        self, sink: Callable[[str], None], started: float | None = None, *, stamped: bool = True
    ) -> None:
        self.sink = sink
        self.started = time.monotonic() if started is None else started
        self.stamped = stamped  # False: the reader stamps (the CLI following progress.log)
        self.last = 0.0
        self.latest_stage: str | None = None  # the stage of the last line (for heartbeats)
        self._lock = threading.Lock()

    def due(self, interval: float = INTERVAL_SECONDS) -> bool:
        """Whether ``interval`` seconds have passed since the last line."""
        return time.monotonic() - self.last >= interval

    def line(self, stage: str, text: str) -> None:
        """Write ``[elapsed] stage text``."""
        with self._lock:
            self.last = time.monotonic()
            self.latest_stage = stage
            body = f"{stage:<{_STAGE_WIDTH}} {text}"
            self.sink(f"[{clock(self.last - self.started)}] {body}" if self.stamped else body)

    def heartbeat(self) -> None:
        """If no line came for :data:`HEARTBEAT_SECONDS` (a slow batch, scoring, an export),
        say that the stage still runs."""
        if self.latest_stage is None or not self.due(HEARTBEAT_SECONDS):
            return
        quiet = format_seconds(time.monotonic() - self.last)
        self.line(self.latest_stage, f"still working ({quiet} since the last line)")

    def count(self, stage: str, what: str, done: int, total: int, started: float) -> None:
        """A throttled ``done/total what`` line with an ETA (always the first and the last)."""
        if done not in (0, total) and not self.due():
            return
        text = f"{done}/{total} {what}"
        if 0 < done < total:
            elapsed = time.monotonic() - started
            text += f"  ETA {format_seconds(elapsed / done * (total - done))}"
        self.line(stage, text)


class Ticker:
    """Counts finished items of a loop: throttled progress lines when a run shows progress
    (:func:`current`), else a tqdm bar when ``bar`` is true, else nothing."""

    def __init__(self, stage: str, what: str, total: int, *, bar: bool = True) -> None:
        self.stage, self.what, self.total, self.done = stage, what, total, 0
        self.progress = current()
        self.started = time.monotonic()
        self.bar: Any = None
        if self.progress is not None:
            self.progress.count(stage, what, 0, total, self.started)
        elif bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"{stage}: {what}", unit="utt")

    def update(self, n: int = 1) -> None:
        """``n`` more items are done."""
        self.done += n
        if self.progress is not None:
            self.progress.count(self.stage, self.what, self.done, self.total, self.started)
        elif self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        """End the bar (progress lines need no end)."""
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _console(line: str) -> None:
    print(line, flush=True)


def file_sink(path: str | os.PathLike) -> Callable[[str], None]:
    """A sink appending each line to ``path`` (created as needed; the follower reads it)."""
    target = Path(path)

    def write(line: str) -> None:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    return write


_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "emodarts_progress", default=None
)


def current() -> Progress | None:
    """The progress of the run in progress, or ``None`` when nothing is to be shown (a study's
    cells, the library used from Python)."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting_to(sink: Callable[[str], None] | None | str) -> Iterator[Progress | None]:
    """Make :func:`current` write to ``sink`` meanwhile: ``"console"`` (stdout, each line
    stamped with the time since the start), a callable (lines unstamped: whoever reads them
    stamps them with its own clock), or ``None`` (no progress lines)."""
    progress = None
    if sink == "console":
        progress = Progress(_console, PROCESS_STARTED)
    elif callable(sink):
        progress = Progress(sink, stamped=False)
    token = _CURRENT.set(progress)
    stop = threading.Event()
    beat = None
    if progress is not None:  # a line at least every HEARTBEAT_SECONDS, whatever runs
        beat = threading.Thread(
            target=_beat, args=(progress, stop), name="emodarts-progress", daemon=True
        )
        beat.start()
    try:
        yield progress
    finally:
        stop.set()
        if beat is not None:
            beat.join()
        _CURRENT.reset(token)


def _beat(progress: Progress, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        progress.heartbeat()


def follow(path: str | os.PathLike, offset: int) -> tuple[list[str], int]:
    """The complete lines appended to ``path`` since byte ``offset``, and the new offset
    (a line still being written is left for the next call)."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line], offset + end


__all__ = [
    "HEARTBEAT_SECONDS",
    "INTERVAL_SECONDS",
    "Progress",
    "Ticker",
    "clock",
    "current",
    "file_sink",
    "follow",
    "reporting_to",
]
