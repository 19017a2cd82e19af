"""What a user sees in TensorBoard after ``gridspec run ... --tensorboard DIR``: a screenshot.

Runs the seed article's 12-trial grid (``examples/seed_grid.py``) with ``--tensorboard``,
serves the logs with ``tensorboard --logdir`` on 127.0.0.1, opens TensorBoard in headless
Chromium (Debian's ``chromium`` package: ``apt-get install -y chromium``) and saves the
HParams dashboard's table (every trial, its params and its score, the objective at its best
epoch) as docs/tensorboard-hparams.png. (The Time Series dashboard draws its charts only when they
scroll into view, which headless Chromium's screenshot does not do, so it is not captured.)

Run by hand, not in CI (it needs Chromium and a free port), from the repository root:

    python benchmarks/tensorboard_screenshot.py [--epochs 3] [--keep LOGDIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no Chromium found: apt-get update && apt-get install -y chromium")


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"TensorBoard did not answer at {url}")


def _screenshot(browser: str, url: str, path: Path, size: str, wait_ms: int) -> None:
    subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={size}", f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url],
        check=True, capture_output=True, timeout=120,
    )
    print(f"saved {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--keep", metavar="LOGDIR", help="write the logs here and keep them")
    args = parser.parse_args()
    browser = _browser()
    logdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gridspec-tb-"))
    if logdir.exists():
        shutil.rmtree(logdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(
        [sys.executable, "-m", "gridspec", "run", "examples/seed_grid.py:build", "--epochs", str(args.epochs),
         "--steps-per-epoch", "10", "--validation-steps", "3", "--tensorboard", str(logdir), "--no-live"],
        cwd=ROOT, env=env, check=True,
    )
    port = _free_port()
    tensorboard = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or "tensorboard"
    server = subprocess.Popen([tensorboard, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/data/runs")
        time.sleep(5)  # the first load of the logs
        docs = ROOT / "docs"
        _screenshot(browser, f"{base}/#hparams", docs / "tensorboard-hparams.png", "1500,900", 20000)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(logdir, ignore_errors=True)


if __name__ == "__main__":
    main()
