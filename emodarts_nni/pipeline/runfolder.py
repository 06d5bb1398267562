"""The run folder: one type that owns its file names, its history and metrics, its name.

A run folder holds everything needed to reproduce and audit one run of one fold:
``config.yaml`` (resolved), ``environment.json`` (seed, versions, command),
``manifest.csv``, ``splits.csv``, ``architecture.json``, ``history.csv`` (losses, UA and α
per epoch), ``checkpoint.pt`` (state_dict + architecture, ``weights_only`` loadable),
``predictions.csv``, ``metrics.json``, ``log.txt``, NNI's experiment folder ``nni/``,
the fold's arrays for multi-trial trials ``data/fold.npz`` and the pictures of
:func:`emodarts_nni.reporting.runs.render_run`.

Every other module asks a :class:`RunFolder` for a path instead of spelling a file name.
Nothing here imports torch or NNI: a report of a finished study reads run folders too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import platform
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import DataError, EmodartsError
from emodarts_nni.common.files import (
    LOCK_FILE,
    atomic_write_json,
    atomic_write_text,
    ensure_folder,
    is_empty_folder,
    lock_folder,
    unlock_folder,
    writable_folder_problem,
)

if TYPE_CHECKING:
    from emodarts_nni.config.experiment import ExperimentConfig

#: The stages of a run, in order; each has one output file that marks it done.
STAGES = ("search", "retrain", "evaluate")

#: Columns of ``history.csv`` that hold text, never numbers.
TEXT_COLUMNS = ("stage", "trial")

#: Config keys (dotted) that never change a run's results: where files go, how the run
#: is watched, how fast features are extracted. Any other difference refuses ``--resume``.
RESULT_NEUTRAL_KEYS = (
    "name",
    "output.",
    "webui.",
    "trainer.progress",
    "trainer.num_threads",
    "features.cache_dir",
    "features.workers",
)


@dataclass(frozen=True)
class RunFolder:
    """A run folder at ``path``; its files are attributes (paths), its names class constants."""

    path: Path

    CONFIG = "config.yaml"
    ENVIRONMENT = "environment.json"
    MANIFEST = "manifest.csv"
    SPLITS = "splits.csv"
    ARCHITECTURE = "architecture.json"
    HISTORY = "history.csv"
    CHECKPOINT = "checkpoint.pt"
    PREDICTIONS = "predictions.csv"
    METRICS = "metrics.json"
    LOG = "log.txt"
    PROGRESS = "progress.log"
    NNI = "nni"
    FOLD_ARRAYS = "data/fold.npz"
    CONFUSION_PNG = "confusion_matrix.png"
    ALPHA_PNG = "alpha.png"
    CURVES_PNG = "curves.png"
    CELL_PNG = "cell_{kind}.png"

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    # ------------------------------------------------------------------ paths
    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved experiment config."""
        return self.path / self.CONFIG

    @property
    def environment(self) -> Path:
        """``environment.json``: seed, library versions, command line."""
        return self.path / self.ENVIRONMENT

    @property
    def manifest(self) -> Path:
        """``manifest.csv``: the utterances the run used."""
        return self.path / self.MANIFEST

    @property
    def splits(self) -> Path:
        """``splits.csv``: every utterance's part in every fold."""
        return self.path / self.SPLITS

    @property
    def architecture(self) -> Path:
        """``architecture.json``: the searched architecture (the search stage's output)."""
        return self.path / self.ARCHITECTURE

    @property
    def history(self) -> Path:
        """``history.csv``: one row per epoch and stage."""
        return self.path / self.HISTORY

    @property
    def checkpoint(self) -> Path:
        """``checkpoint.pt``: the retrained model (the retrain stage's output)."""
        return self.path / self.CHECKPOINT

    @property
    def predictions(self) -> Path:
        """``predictions.csv``: class probabilities of every test utterance."""
        return self.path / self.PREDICTIONS

    @property
    def metrics(self) -> Path:
        """``metrics.json``: the test results (the evaluate stage's output)."""
        return self.path / self.METRICS

    @property
    def log(self) -> Path:
        """``log.txt``: our, NNI's and Lightning's log records of the run."""
        return self.path / self.LOG

    @property
    def progress(self) -> Path:
        """``progress.log``: the progress lines of a run that runs as an NNI trial, which the
        ``emodarts`` process that launched it prints (:mod:`emodarts_nni.common.progress`)."""
        return self.path / self.PROGRESS

    @property
    def nni(self) -> Path:
        """``nni/``: NNI's experiment folder (what ``emodarts view`` reopens)."""
        return self.path / self.NNI

    @property
    def fold_arrays(self) -> Path:
        """``data/fold.npz``: the fold's arrays, read by multi-trial trial processes."""
        return self.path / self.FOLD_ARRAYS

    def picture(self, name: str, **fields: str) -> Path:
        """A picture's path, e.g. ``picture(RunFolder.CELL_PNG, kind="normal")``."""
        return self.path / name.format(**fields)

    # ------------------------------------------------------------------ naming
    @staticmethod
    def default_name(cfg: ExperimentConfig, baseline: str | None = None) -> str:
        """``<name>-<strategy>-<scope>-fold<k>``, or ``<name>-baseline-<model>-fold<k>``."""
        if baseline is not None:
            return f"{cfg.name}-baseline-{baseline}-fold{cfg.splits.fold}"
        scope = Path(cfg.space.scope).stem
        return f"{cfg.name}-{cfg.search.strategy}-{scope}-fold{cfg.splits.fold}"

    @classmethod
    def for_run(
        cls,
        cfg: ExperimentConfig,
        out: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        baseline: str | None = None,
    ) -> RunFolder:
        """The run folder: ``out`` or ``<output.dir>/<default_name>``; never a finished one.

        With ``resume`` the folder is reused: it must hold a ``config.yaml`` that agrees
        with ``cfg`` on every key that changes results (:meth:`check_resumable`).
        Otherwise an existing non-empty folder gets a numbered sibling (``...-2``, ``...-3``).
        Either way the folder is locked for this process's lifetime (:func:`take_folder`):
        two runs started together with one ``--out`` get two folders, and a resume of a
        folder another process is running fails naming that process.
        """
        base = (
            Path(out) if out is not None else Path(cfg.output.dir) / cls.default_name(cfg, baseline)
        )
        if resume:
            folder = cls(base)
            folder.check_resumable(cfg)
            take_folder(base, "run folder")
            return folder
        return cls(claim_new_folder(base, "run folder"))

    def check_resumable(self, cfg: ExperimentConfig) -> None:
        """Refuse to resume with a config that would change results (naming the keys).

        Called before anything in the folder is written, so a refused resume leaves the
        folder exactly as it was.
        """
        from emodarts_nni.config.experiment import config_to_dict, load_config

        if not self.config.is_file():
            raise EmodartsError(f"--resume: no run to resume in {self.path} (config.yaml missing)")
        shown = differences(
            config_to_dict(load_config(self.config)), config_to_dict(cfg), RESULT_NEUTRAL_KEYS
        )
        if shown:
            raise EmodartsError(
                f"--resume: the config differs from {self.config} in {shown}; "
                "resume with the same settings or start a new run without --resume"
            )

    # ------------------------------------------------------------------ start
    def start(self, cfg: ExperimentConfig) -> None:
        """Create the folder and write ``config.yaml`` and ``environment.json`` (once)."""
        from emodarts_nni.config.experiment import dump_config

        ensure_folder(self.path, "run folder")  # a file in the way or no permission: one line
        if not self.config.is_file():
            dump_config(cfg, self.config)
        if not self.environment.is_file():
            atomic_write_json(
                self.environment,
                {"seed": cfg.seed, "versions": versions(), "command": sys.argv, "cwd": os.getcwd()},
            )

    @contextlib.contextmanager
    def logging_to_log(self) -> Iterator[None]:
        """Send our, NNI's and Lightning's log records to ``log.txt`` meanwhile."""
        from emodarts_nni.nni_runtime.chatter import LOGGERS, replay_pending

        handler = logging.FileHandler(self.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        loggers = [logging.getLogger(n) for n in ("emodarts", *LOGGERS)]
        for logger in loggers:
            logger.addHandler(handler)
        logging.getLogger("emodarts").setLevel(logging.INFO)
        replay_pending(handler)  # what third parties said before the run folder was known
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
            handler.close()

    # ------------------------------------------------------------------ stages
    def done(self, stage: str) -> bool:
        """Whether ``stage``'s output is in the folder (outputs are written atomically)."""
        if stage == "search":
            return self.architecture.is_file()
        if stage == "retrain":
            return self.checkpoint.is_file()
        if stage == "evaluate":
            return self.metrics.is_file() and self.predictions.is_file()
        raise EmodartsError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")

    # ------------------------------------------------------------------ history
    def read_history(self) -> list[dict[str, Any]]:
        """Rows of ``history.csv`` (``[]`` when there is none).

        Numbers are parsed (integers stay integers, so a rewritten file is unchanged);
        ``stage``/``trial``, blanks and anything that is not a number stay text. Raises :class:`EmodartsError` naming the file when it cannot be read.
        """
        if not self.history.is_file():
            return []
        try:
            with self.history.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise EmodartsError(f"{self.history}: unreadable history ({exc})") from None
        return [
            {
                key: value if key in TEXT_COLUMNS or value in ("", None) else _number(value)
                for key, value in row.items()
                if key is not None  # surplus fields of a damaged row
            }
            for row in rows
        ]

    def write_history(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Write ``history.csv`` atomically; columns: ``stage``, ``epoch``, then the rest sorted."""
        rows = list(rows)
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        first = [c for c in ("stage", "epoch") if c in columns]
        columns = first + sorted(c for c in columns if c not in first)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(self.history, buffer.getvalue())

    # ------------------------------------------------------------------ metrics
    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json`` as a dict; :class:`EmodartsError` naming the file if unusable."""
        try:
            metrics = json.loads(self.metrics.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EmodartsError(f"{self.metrics}: unreadable ({exc})") from None
        if not isinstance(metrics, dict):
            raise EmodartsError(f"{self.metrics}: not a JSON object")
        return metrics

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write ``metrics.json`` atomically."""
        return atomic_write_json(self.metrics, dict(metrics))


def take_folder(folder: str | os.PathLike, what: str) -> None:
    """Lock ``folder`` (a run or study folder) for this process, or raise one line naming
    the process that holds it (:func:`emodarts_nni.common.files.lock_folder`)."""
    holder = lock_folder(folder)
    if holder is not None:
        who = f"process {holder}" if holder else "another process"
        raise EmodartsError(
            f"{what} {folder} is in use by {who} ({LOCK_FILE}); "
            "wait for it to finish or choose another --out"
        )


def claim_new_folder(base: str | os.PathLike, what: str) -> Path:
    """``base``, or its first numbered sibling (``base-2``, ``base-3``, ...) that is empty
    and not locked by another process, locked for this process (created if missing).

    A folder is taken only when this process holds its lock *and* finds it empty (apart
    from the lock file), so two processes racing for ``base`` never share a folder.
    """
    base = Path(base)
    problem = writable_folder_problem(base)
    if problem is not None:  # e.g. --out names a file: one line, before any work
        raise DataError(f"{what} {base}: {problem}")
    candidate, n = base, 1
    while True:
        if is_empty_folder(candidate) and lock_folder(candidate) is None:
            if is_empty_folder(candidate):
                return candidate
            unlock_folder(candidate)  # filled by a process that held it before us
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")


def _number(text: str) -> Any:
    """``text`` as an int or float when it is one, else unchanged."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def differences(
    stored: Mapping[str, Any], wanted: Mapping[str, Any], neutral: tuple[str, ...] = ()
) -> str | None:
    """Where two nested settings differ, for a ``--resume`` refusal, or None when they agree.

    Shown as ``key (stored -> wanted)`` with dotted keys, sorted, at most five (then ``and N
    more``); keys starting with one of ``neutral`` are ignored. The one comparison behind
    ``run --resume`` (configs) and ``study --resume`` (study files).
    """
    old, new = _flatten(stored), _flatten(wanted)
    changed = [
        key
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key) and not key.startswith(neutral)
    ]
    if not changed:
        return None
    shown = ", ".join(f"{key} ({old.get(key)!r} -> {new.get(key)!r})" for key in changed[:5])
    return shown + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections as ``{"section.key": value}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value and key != "params":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in (
        "emodarts-nni",
        "nni",
        "torch",
        "pytorch-lightning",
        "librosa",
        "numpy",
        "scikit-learn",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out
