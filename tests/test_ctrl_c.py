"""Ctrl-C on ``gridspec run --workers 2 --storage ...``, sent the way a terminal sends it.

The whole process group gets one SIGINT after the first trial is journaled. The search must
let the trials in flight finish and be recorded, exit with status 130, leave no worker
process behind, and a second run of the same command must train only what is missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT

from gridspec.journal import load

MODULE = """
import json, os, time
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])

@gs.grid(units=[1, 2, 3], act=["tanh", "relu"])
def build(units, act):
    with open(os.environ["GS_TEST_LOG"], "a") as f:
        f.write(json.dumps({"units": units, "act": act, "pid": os.getpid()}) + "\\n")
    time.sleep(1.0)  # a trial of a second or two
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation=act),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
    return model
"""


def _like_a_terminal() -> None:
    """In the child before exec: its own process group (so the test can signal the whole
    group, as a terminal does), and SIGINT handled even if this test runs in the background
    of a shell (which starts background jobs with SIGINT ignored, inherited across exec)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc: psutil is not a dependency)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _journaled(path: Path) -> set[int]:
    if not path.exists():
        return set()
    try:
        return {t.number for t in load(path).trials}
    except Exception:  # noqa: BLE001 - the file may not hold a search yet
        return set()


def _built(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(d["units"], d["act"]) for d in map(json.loads, log.read_text().splitlines())]


def test_ctrl_c_with_two_workers_records_every_finished_trial_and_resumes_the_rest(tmp_path):
    module = tmp_path / "slow_grid.py"
    module.write_text(MODULE)
    storage, log = tmp_path / "search.sqlite", tmp_path / "built.jsonl"
    # --fuse 1: each worker runs one trial at a time, so Ctrl-C lands with trials left to run
    command = [sys.executable, "-m", "gridspec", "run", f"{module}:build", "--workers", "2", "--fuse", "1",
               "--steps-per-epoch", "2", "--storage", str(storage)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GS_TEST_LOG": str(log)}
    run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=_like_a_terminal)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while not _journaled(storage):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no trial was journaled in time"
            workers |= _descendants(run.pid)
            time.sleep(0.1)
        workers |= _descendants(run.pid)
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, (out, err)
    assert "interrupted" in err and "resume with: gridspec run" in err and "Traceback" not in err
    workers |= {pid for pid in (json.loads(line)["pid"] for line in log.read_text().splitlines())}
    assert len(workers) >= 2
    time.sleep(0.5)  # an orphan's last moment would be a bug too, but give the kernel a beat
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the search"

    printed = {int(n) for n in re.findall(r"^Model +\d+ of \d+\.\.\. trial (\d+)", out, re.M)}
    journaled = _journaled(storage)
    assert printed and printed <= journaled < set(range(1, 7))  # stopped early, nothing lost
    first_run = _built(log)

    log.unlink()
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resumed: {len(journaled)} of 6 trials already complete" in again.stdout
    space = [(u, a) for u in (1, 2, 3) for a in ("tanh", "relu")]  # grid order: trial numbers
    rest = sorted(_built(log))
    assert rest == sorted(space[n - 1] for n in range(1, 7) if n not in journaled)
    assert set(first_run) | set(rest) == set(space)
    assert {t.number for t in load(storage).trials} == set(range(1, 7))
