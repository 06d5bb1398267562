"""The longest silence of a command's console: run it, note when each line arrives, report the
longest gap (and where it was), the first line's delay and the total time.

    python benchmarks/console_silence.py --json benchmarks/results-console-silence.json -- \\
        emodarts run experiments/quickstart.yaml --out runs/silence

Measures what a user waits for between two lines (issue "Users 2": 55–65 s of silence after
the web-UI address, 160 s without any epoch line with ``--no-webui``). Lines are read from
stdout and stderr together, as a terminal shows them; the console is kept in full (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the command after ``--``, print and optionally save the silence statistics."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the measurement (and the console) here")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[tuple[float, str]] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append((time.monotonic() - started, line.rstrip("\n")))
    code = process.wait()
    total = time.monotonic() - started
    times = [0.0, *(t for t, _ in lines), total]
    gaps = [(b - a, i) for i, (a, b) in enumerate(zip(times, times[1:], strict=False))]
    longest, where = max(gaps)
    after = lines[where - 1][1] if where > 0 else "(the start)"
    result = {
        "command": command,
        "exit_status": code,
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "total_seconds": round(total, 1),
        "first_line_seconds": round(lines[0][0], 1) if lines else None,
        "longest_silence_seconds": round(longest, 1),
        "longest_silence_after": after,
        "lines": len(lines),
        "console": [f"{t:7.1f}  {text}" for t, text in lines],
    }
    print(
        f"{len(lines)} lines in {total:.1f} s; first after {result['first_line_seconds']} s; "
        f"longest silence {longest:.1f} s, after: {after}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
