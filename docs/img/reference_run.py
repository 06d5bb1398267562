"""The reference quickstart run that docs/getting-started.md shows: run it, keep what the page quotes.

    python docs/img/reference_run.py            # about 3–4 minutes on 2 idle cores

Runs ``emodarts run experiments/quickstart.yaml`` from a fresh cache (the corpus is generated
and its features extracted, as on a first run) through ``benchmarks/console_silence.py``, then
writes into ``docs/reference/``: the console as printed (``quickstart-console.txt``), the
silence measurement (``quickstart-silence.json``), the run's ``metrics.json`` and
``architecture.json``; and copies its pictures to ``docs/img/getting-started-*.png``.
``tests/test_docs.py`` holds the page's numbers to these files. The checkout's path in the
console is shown as ``/home/you/emodarts-nni``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
PICTURES = {
    "curves.png": "getting-started-curves.png",
    "confusion_matrix.png": "getting-started-confusion-matrix.png",
    "alpha.png": "getting-started-alpha.png",
    "cell_normal.png": "getting-started-cell-normal.png",
    "cell_seq.png": "getting-started-cell-seq.png",
}


def main() -> int:
    """Run the quickstart, then keep its console, measurement, results and pictures."""
    REFERENCE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = ROOT / "runs" / "quickstart-darts-emodarts-fold0"
        if run_dir.exists():
            print(f"error: {run_dir} exists; move it away first", file=sys.stderr)
            return 2
        env = {**os.environ, "HOME": tmp, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        silence = REFERENCE / "quickstart-silence.json"
        command = [
            sys.executable,
            str(ROOT / "benchmarks" / "console_silence.py"),
            "--json",
            str(silence),
            "--",
            str(Path(sys.executable).parent / "emodarts"),
            "run",
            "experiments/quickstart.yaml",
        ]
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            return done.returncode
    measured = json.loads(silence.read_text())
    console = [line[9:] for line in measured.pop("console")]  # without the arrival times
    text = "\n".join(console).replace(str(ROOT), "/home/you/emodarts-nni")
    (REFERENCE / "quickstart-console.txt").write_text(text + "\n")
    silence.write_text(json.dumps(measured, indent=2, ensure_ascii=False) + "\n")
    for name in ("metrics.json", "architecture.json"):
        shutil.copyfile(run_dir / name, REFERENCE / f"quickstart-{name}")
    for source, target in PICTURES.items():
        shutil.copyfile(run_dir / source, ROOT / "docs" / "img" / target)
    print(f"kept in {REFERENCE} and docs/img/; the run itself stays in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
