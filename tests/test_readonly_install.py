"""nni-notes #13: NNI's generated ``_layers.py`` is never written into site-packages.

On first import ``nni/nas/nn/pytorch/layers.py`` writes ``_layers.py`` beside itself when it
is missing or stale; :func:`emodarts_nni.nni_runtime.quiet_nni_import` keeps it in memory
instead. Each case runs a fresh Python in a private mount namespace (``unshare -rm``) where
site-packages is bind-mounted read-only onto itself and NNI's ``nni/nas/nn/pytorch`` folder
is replaced by a copy (with a missing, stale or fresh ``_layers.py``): the real install is
never changed. An audit hook, installed at start-up (``sitecustomize``), records every
attempt to open, create, rename or remove a file under NNI's package folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Mounts site-packages read-only, puts the copy over NNI's folder, then runs the child.
MOUNT_SCRIPT = """\
set -e
mount --bind "$SITE" "$SITE"
mount -o remount,bind,ro "$SITE"
mount --bind "$COPY" "$TARGET"
if [ "$COPY_MODE" = ro ]; then mount -o remount,bind,ro "$TARGET"; fi
exec "$@"
"""

#: ``sitecustomize.py`` of the child: records write attempts under ``$NNI_DIR`` from start-up.
AUDIT = r"""
import os, sys

NNI_DIR = os.environ["NNI_DIR"] + os.sep
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
writes = []

def _under(path):
    return os.path.abspath(os.fsdecode(path)).startswith(NNI_DIR)

def _audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wxa+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS
        )
        if writing and _under(path):
            writes.append(os.fsdecode(path))
    elif event in ("os.rename", "os.remove", "os.mkdir", "os.truncate"):
        if isinstance(args[0], (str, bytes)) and _under(args[0]):
            writes.append(f"{event} {os.fsdecode(args[0])}")

sys.addaudithook(_audit)
"""

#: The child of a case: imports as the case says, then reports as JSON (argv: case, out).
CHILD = r"""
import json, os, sys, warnings
import sitecustomize

case, out = sys.argv[1:3]
access, meta_path = os.access, list(sys.meta_path)
report = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if case == "missing":
        from emodarts_nni.cli.main import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        report["help_imported_nni_nas"] = "nni.nas" in sys.modules
        import torch
        import emodarts_nni
        sizes = dict(n_mfcc=16, frames=16, init_channels=2, stem_multiplier=2, cnn_cells=3,
                     cnn_nodes=2, seq_cells=1, seq_nodes=2, hidden=8, dropout=0.0)
        space = emodarts_nni.build_space("emodarts", **sizes)  # NNI's first import is here
        restored = os.access is access, sys.meta_path == meta_path  # (absl adds a finder)
        from nni.nas.strategy import DARTS
        supernet = DARTS().mutate_model(space)
        report["logits"] = list(supernet(torch.randn(3, 16, 16)).shape)
    else:
        from emodarts_nni.nni_runtime import quiet_nni_import
        with quiet_nni_import():
            import nni.nas.nn.pytorch
        restored = os.access is access, sys.meta_path == meta_path
import nni.nas.nn.pytorch as nn_pytorch
generated = sys.modules.get("nni.nas.nn.pytorch._layers")  # None: NNI exec'd it in layers
if case == "missing":
    with open(out + ".source", "w") as fp:  # what NNI generates here, for the other cases
        fp.write(sys.modules["nni.nas.nn.pytorch.layers"].code)
report.update(
    writes=sitecustomize.writes,
    generated_file=getattr(generated, "__file__", None),
    wrapper_module=nn_pytorch.MutableConv2d.__module__,
    same_class=nn_pytorch.MutableConv2d is getattr(generated, "MutableConv2d", None),
    access_restored=restored[0],
    meta_path_restored=restored[1],
    nni_warnings=[
        str(w.message) for w in caught
        if "Cannot write" in str(w.message) or "not a nn.Module" in str(w.message)
    ],
)
with open(out, "w") as fp:
    json.dump(report, fp)
"""

#: A stand-in for NNI's trial module, run by ``python -m emodarts_nni.nni_runtime.patches``.
TRIAL_MODULE = r"""
import json, sys
import sitecustomize
import nni.nas.nn.pytorch  # as NNI's trial module does, with no guard of its own

generated = sys.modules.get("nni.nas.nn.pytorch._layers")
with open(sys.argv[1], "w") as fp:
    json.dump({
        "argv": sys.argv,
        "name": __name__,
        "writes": sitecustomize.writes,
        "generated_file": getattr(generated, "__file__", None),
        "wrapper_module": sys.modules["nni.nas.nn.pytorch"].MutableConv2d.__module__,
    }, fp)
"""


def _nni_dir() -> Path:
    spec = importlib.util.find_spec("nni")  # finds the package without importing it
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _namespace_problem(probe: Path) -> str | None:
    """Why a read-only bind mount in a private mount namespace cannot be made, or None."""
    if not sys.platform.startswith("linux"):
        return "needs Linux mount namespaces"
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command"
    probe.mkdir()
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(probe)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        return f"unshare -rm with a read-only bind mount failed: {done.stderr.strip()}"
    return None


class ReadonlyInstall:
    """Runs child cases over a copy of NNI's ``nni/nas/nn/pytorch`` in a mount namespace.

    Cases: ``missing`` (no ``_layers.py``, read-only), ``stale`` (one from another torch
    version, in a *writable* folder), ``fresh`` (NNI's current output, read-only) and
    ``trial`` (``stale`` again, started as a multi-trial search starts NNI's trials).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.nni_dir = _nni_dir()
        self.target = self.nni_dir / "nas" / "nn" / "pytorch"
        self.done: dict[str, tuple[dict, Path]] = {}
        self.modules = base / "modules"  # sitecustomize (the audit) and the trial stand-in
        self.modules.mkdir()
        (self.modules / "sitecustomize.py").write_text(AUDIT)
        (self.modules / "readonly_trial.py").write_text(TRIAL_MODULE)

    def source(self, case: str) -> str | None:
        """The ``_layers.py`` a case starts with (``None``: none)."""
        if case == "missing":
            return None
        fresh = (self.base / "missing.json.source").read_text()  # what NNI generates here
        if case == "fresh":
            return fresh
        lines = fresh.splitlines()
        version = next(i for i, line in enumerate(lines) if line.startswith("# _torch_version"))
        lines[version] = "# _torch_version = 0.0.0"
        return "\n".join(lines)

    def run(self, case: str) -> tuple[dict, Path]:
        """The report of ``case`` (run once) and the folder copy it ran on."""
        if case in self.done:
            return self.done[case]
        if case != "missing":
            self.run("missing")  # the fresh source
        copy = self.base / case
        shutil.rmtree(copy, ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__", "_layers.py")
        shutil.copytree(self.target, copy, ignore=ignore)
        source = self.source(case)
        if source is not None:
            (copy / "_layers.py").write_text(source)
        out = self.base / f"{case}.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO), str(self.modules), os.environ.get("PYTHONPATH", "")]
            ),
            "NNI_DIR": str(self.nni_dir),
            "SITE": str(self.nni_dir.parent),
            "COPY": str(copy),
            "TARGET": str(self.target),
            "COPY_MODE": "rw" if case in ("stale", "trial") else "ro",
        }
        if case == "trial":
            from emodarts_nni.nni_runtime.patches import nni_trial_python

            python = shlex.split(nni_trial_python())
            child = [python[0], "-B", *python[1:], "-m", "readonly_trial", str(out), "trial"]
        else:
            child = [sys.executable, "-B", "-c", CHILD, case, str(out)]
        done = subprocess.run(
            ["unshare", "-rm", "sh", "-c", MOUNT_SCRIPT, "sh", *child],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        self.done[case] = json.loads(out.read_text()), copy
        return self.done[case]


@pytest.fixture(scope="module")
def readonly_install(tmp_path_factory: pytest.TempPathFactory) -> ReadonlyInstall:
    """A :class:`ReadonlyInstall`; the tests skip where no mount namespace can be made."""
    base = tmp_path_factory.mktemp("readonly")
    problem = _namespace_problem(base / "probe")
    if problem:
        pytest.skip(f"no read-only site-packages to test with: {problem}")
    return ReadonlyInstall(base)


def _assert_clean(report: dict) -> None:
    """No write was attempted; the wrappers are NNI's module; the guard left nothing behind."""
    assert report["writes"] == [], report
    assert report["wrapper_module"] == "nni.nas.nn.pytorch._layers", report
    assert report["same_class"], report
    assert report["access_restored"] and report["meta_path_restored"], report
    assert report["nni_warnings"] == [], report


def _unchanged(install: ReadonlyInstall, case: str, copy: Path) -> None:
    shipped = {p.name for p in install.target.iterdir()} - {"__pycache__", "_layers.py"}
    source = install.source(case)
    assert {p.name for p in copy.iterdir()} == shipped | ({"_layers.py"} if source else set())
    if source is not None:
        assert (copy / "_layers.py").read_text() == source


def test_readonly_site_packages_without_generated_layers(readonly_install: ReadonlyInstall):
    """The package, the CLI's help and a supernet forward work; nothing is written."""
    report, copy = readonly_install.run("missing")
    _assert_clean(report)
    assert report["help_imported_nni_nas"] is False
    assert report["logits"] == [3, 4]
    assert report["generated_file"] is None  # built in memory
    _unchanged(readonly_install, "missing", copy)


def test_stale_generated_layers_are_not_rewritten_even_when_writable(
    readonly_install: ReadonlyInstall,
):
    """A ``_layers.py`` from another torch version, in a writable folder, is left as it is."""
    report, copy = readonly_install.run("stale")
    _assert_clean(report)
    assert report["generated_file"] is None  # the stale file is not imported either
    _unchanged(readonly_install, "stale", copy)


def test_fresh_generated_layers_are_used_as_they_are(readonly_install: ReadonlyInstall):
    """A fresh ``_layers.py`` is imported from disk, unchanged."""
    report, copy = readonly_install.run("fresh")
    _assert_clean(report)
    assert report["generated_file"] == str(readonly_install.target / "_layers.py")
    _unchanged(readonly_install, "fresh", copy)


def test_nas_trials_import_nni_through_the_guard(readonly_install: ReadonlyInstall):
    """A trial started as ``nni_trial_python() -m MODULE ARGS`` writes nothing, args intact."""
    report, copy = readonly_install.run("trial")
    assert report["writes"] == [], report
    assert report["name"] == "__main__"
    assert Path(report["argv"][0]).name == "readonly_trial.py"
    assert report["argv"][1:] == [str(readonly_install.base / "trial.json"), "trial"]
    assert report["generated_file"] is None
    assert report["wrapper_module"] == "nni.nas.nn.pytorch._layers"
    _unchanged(readonly_install, "trial", copy)


def test_nas_experiments_start_their_trials_through_the_guard(tmp_path: Path):
    """``configure_nas_experiment`` makes NNI's trial command run via the guard (and envs)."""
    import toyspace

    from emodarts_nni.nni_runtime import configure_nas_experiment
    from emodarts_nni.nni_runtime.patches import nni_trial_python
    from emodarts_nni.strategy.registry import make_strategy

    experiment = configure_nas_experiment(
        toyspace.ToySpace(),
        toyspace.make_evaluator(1),
        make_strategy("random"),
        experiment_dir=tmp_path,
        max_trial_number=2,
        trial_env={"EXAMPLE": "a b"},
    )
    command = experiment.config.canonical_copy().trial_command
    assert command == (
        f"EXAMPLE='a b' {nni_trial_python()} -m nni.nas.execution.training_service trial"
    )
