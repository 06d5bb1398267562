"""Screenshot NNI's web UI trial table with chosen columns, for the docs.

    emodarts view STUDY_DIR --port 8091 &
    python docs/img/webui_screenshot.py http://127.0.0.1:8091/detail OUT.png \\
        --columns cell arm fold seed strategy --metric-columns architecture

Drives headless Chromium (``chromium`` on PATH) through its DevTools protocol with the
``websockets`` package NNI already installs: opens the page, stores the named columns
where the trial table's "Add/Remove columns" dialog stores them (search-space keys are
listed there as "KEY (space)", final-result keys as "KEY (metric)"), reloads, and captures
the page. A docs tool, not part of the product.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets

#: The trial table's columns are read from localStorage (``<experiment id>_columns``, the
#: format of NNI's ``static/model/localStorage.ts``); the UI writes it when "Add/Remove
#: columns" is saved. Setting it and reloading shows the same table a user gets that way.
SET_COLUMNS = """
(async (keys) => {
  const profile = await (await fetch('/api/v1/nni/experiment')).json();
  const value = JSON.stringify(keys);
  localStorage.setItem(profile.id + '_columns', JSON.stringify(
    {value: value, time: Date.now(), expire: 30 * 24 * 3600 * 1000, isSelectall: false}));
  return profile.id;
})(%s)
"""


#: Bring the trial table to the top of the page (the metric chart above it is NNI's own).
SCROLL_TO_TABLE = """
[...document.querySelectorAll('span, div')].find((e) => e.textContent.trim() === 'Trial jobs')
  ?.scrollIntoView();
"""


async def capture(
    ws_url: str, url: str, labels: list[str], out: Path, size: tuple[int, int]
) -> str:
    """Load ``url``, show the ``labels`` columns in its trial table, write the screenshot to
    ``out``."""
    async with websockets.connect(ws_url, max_size=64 * 2**20) as ws:
        counter = 0

        async def call(method: str, **params: object) -> dict:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    return message.get("result", {})

        width, height = size
        await call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                   deviceScaleFactor=1, mobile=False)  # fmt: skip
        await call("Page.enable")
        await call("Page.navigate", url=url)
        await asyncio.sleep(4)
        result = await call("Runtime.evaluate", expression=SET_COLUMNS % json.dumps(labels),
                            awaitPromise=True, returnByValue=True)  # fmt: skip
        await call("Page.navigate", url=url)
        await asyncio.sleep(8)  # the single-page app fetches the experiment and its trials
        await call("Runtime.evaluate", expression=SCROLL_TO_TABLE)
        await asyncio.sleep(1)
        shot = await call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        return str(result.get("result", {}).get("value"))


def main(argv: list[str] | None = None) -> int:
    """Take the screenshot; print what the columns dialog said."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--columns", nargs="*", default=[], help="search-space keys")
    parser.add_argument("--metric-columns", nargs="*", default=[], help="final-result keys")
    parser.add_argument("--size", default="1700x1000")
    parser.add_argument("--port", type=int, default=9333, help="Chromium's DevTools port")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    labels = ["sequenceId", "status", *(f"space/{c}" for c in args.columns), "latestAccuracy"]
    labels += [f"metric/{m}" for m in args.metric_columns]
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--remote-debugging-port={args.port}", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/json/list") as r:
                        pages = [t for t in json.load(r) if t.get("type") == "page"]
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            said = asyncio.run(
                capture(
                    pages[0]["webSocketDebuggerUrl"], args.url, labels, args.out, (width, height)
                )
            )
        finally:
            browser.terminate()
            browser.wait(timeout=10)
    print(f"{args.out}: experiment {said}, columns {', '.join(labels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
