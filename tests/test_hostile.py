"""Every hostile-input case under ``tests/hostile/`` (format: ``tests/hostile/README.md``).

Each case runs ``emodarts`` as a real subprocess in its own folder and must end with one
line naming the culprit, the expected exit status, no traceback, and its inputs unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

HOSTILE = Path(__file__).resolve().parent / "hostile"
CASES = sorted(HOSTILE.glob("*.yaml"))
KNOWN_FIXTURES = {"run", "wav"}
KNOWN_KEYS = {"case", "group", "needs", "files", "argv", "exit", "message", "unchanged", "timeout"}


def _load(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = set(case) - KNOWN_KEYS
    assert not unknown, f"{path.name}: unknown keys {sorted(unknown)}"
    assert set(case.get("needs", [])) <= KNOWN_FIXTURES, f"{path.name}: unknown fixture"
    assert case.get("group") in {"A", "B", "C", "D"}, f"{path.name}: group must be A-D"
    return case


def _fingerprint(path: Path) -> tuple[int, str]:
    """The file's kind and, for a regular file, its bytes' hash (a missing path: kind 0)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return 0, ""
    if stat.S_ISREG(info.st_mode):
        return stat.S_IFMT(info.st_mode), hashlib.sha256(path.read_bytes()).hexdigest()
    if stat.S_ISDIR(info.st_mode):
        names = sorted(p.name for p in path.iterdir())
        return stat.S_IFMT(info.st_mode), hashlib.sha256("\0".join(names).encode()).hexdigest()
    return stat.S_IFMT(info.st_mode), ""


@pytest.fixture(scope="session")
def hostile_fixtures(tmp_path_factory) -> dict[str, str]:
    """``$RUN``, ``$CK`` and ``$WAV``, made once (a tiny quickstart run, one WAV)."""
    needs = set()
    for path in CASES:
        needs.update(_load(path).get("needs", []))
    values: dict[str, str] = {}
    if "run" in needs:
        from quickstart_run import quickstart_checkpoint

        checkpoint = quickstart_checkpoint(tmp_path_factory.getbasetemp())
        values["CK"] = str(checkpoint)
        values["RUN"] = str(checkpoint.parent)
    if needs & {"wav", "run"}:
        import numpy as np
        import soundfile as sf

        wav = tmp_path_factory.mktemp("hostile-wav") / "speech.wav"
        rng = np.random.default_rng(0)
        sf.write(wav, (0.1 * rng.standard_normal(16000 * 2)).astype("float32"), 16000)
        values["WAV"] = str(wav)
    return values


def _substitute(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$([A-Z]+)", lambda m: variables.get(m[1], m[0]), value)
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    return value


def test_the_corpus_is_not_empty_and_well_formed():
    assert CASES, "tests/hostile/ has no case"
    for path in CASES:
        _load(path)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_case(path: Path, tmp_path: Path, hostile_fixtures: dict[str, str]):
    case = _load(path)
    variables = {**hostile_fixtures, "TMP": str(tmp_path)}
    for name, content in (case.get("files") or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_substitute(content, variables), encoding="utf-8")
    argv = [str(a) for a in _substitute(case["argv"], variables)]
    guarded = [Path(p) for p in _substitute(case.get("unchanged", []), variables)]
    before = {p: _fingerprint(p) for p in guarded}
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "emodarts_nni.cli.main", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=case.get("timeout", 60),
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert result.returncode == case.get("exit", 2), output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, f"no message on standard error; stdout: {result.stdout[-2000:]}"
    assert re.search(case["message"], lines[-1]), f"last line: {lines[-1]!r}"
    for p in guarded:
        assert _fingerprint(p) == before[p], f"{p} changed"
