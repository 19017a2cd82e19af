"""Ctrl-C on ``gridspec run --workers 2 --storage ...`` and on ``--executor ray``, sent the way
a terminal sends it.

The whole process group gets one SIGINT after the first trial is journaled. The search must
let the trials in flight finish and be recorded, exit with status 130, leave no worker
process (no Ray process) behind, and a second run of the same command must train only what
is missing. Like ``test_ray.py``, the Ray test skips where Ray is missing, except in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT

from gridspec.journal import load

MODULE = """
import json, os, time
import numpy as np
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
    import keras  # here, not at the top: the search's own process then never loads TensorFlow

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation=act),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
    return model
"""


def _holds_tensorflow(pid: int) -> bool:
    """Whether process ``pid`` has TensorFlow's library loaded (docs/workers.md: the search's own
    process does not need it when trials run elsewhere)."""
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()


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
    """The trials journaled so far. Read it only once a trial has begun (its line in the log):
    a read that races the search creating the journal could make the search's later writes
    invisible to readers (its -wal removed, see ``SQLiteBackend``) until the search ends."""
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
        while not (log.exists() and _journaled(storage)):  # see _journaled
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no trial was journaled in time"
            workers |= _descendants(run.pid)
            time.sleep(0.1)
        workers |= _descendants(run.pid)
        assert not _holds_tensorflow(run.pid)  # trials run in the workers: the CLI stays light
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


# -- the same with Ray -------------------------------------------------------------------------
def _started_at(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot), or None once it is gone or a zombie: with
    the pid, it names one process, never a later one that reuses the number."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").strip()
    except OSError:
        return ""


def _in_environment(entry: bytes) -> set[tuple[int, str]]:
    """Live processes whose environment holds ``entry`` (``NAME=value``): every process of a
    Ray instance inherits its driver's environment, and a private ``RAY_TMPDIR`` marks them."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:  # gone, or another user's
                continue
            if entry in environ and (started := _started_at(int(proc.name))) is not None:
                found.add((int(proc.name), started))
    return found


def _still_running(processes: set[tuple[int, str]], seconds: float) -> set[tuple[int, str]]:
    """Those of ``processes`` still running after a bounded grace for their last moments."""
    deadline = time.monotonic() + seconds
    while (alive := {p for p in processes if _started_at(p[0]) == p[1]}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _ray_or_skip() -> None:
    if os.environ.get("CI") or os.environ.get("GRIDSPEC_REQUIRE_RAY"):
        import ray  # noqa: F401  (CI must have the extra: fail loudly, never skip)
    else:
        pytest.importorskip("ray", reason='the Ray extra is not installed (pip install "gridspec[ray]")')


def test_ctrl_c_on_ray_records_every_finished_trial_leaves_no_ray_process_and_resumes_the_rest(tmp_path):
    _ray_or_skip()
    module = tmp_path / "slow_grid.py"
    module.write_text(MODULE)
    storage, log = tmp_path / "search.sqlite", tmp_path / "built.jsonl"
    # A local Ray instance of this test alone: on 127.0.0.1 (--address local), its sockets,
    # logs and session in a private folder (short: Unix socket paths are limited to ~100 bytes).
    ray_tmp = tempfile.mkdtemp(prefix="gs-ray-")
    marker = f"RAY_TMPDIR={ray_tmp}".encode()
    command = [sys.executable, "-m", "gridspec", "run", f"{module}:build", "--executor", "ray",
               "--address", "local", "--fuse", "1", "--steps-per-epoch", "2", "--storage", str(storage)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GS_TEST_LOG": str(log), "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=_like_a_terminal)
    spawned: dict[tuple[int, str], str] = {}  # (pid, start time) -> program, below the CLI
    try:
        deadline = time.monotonic() + 240
        while True:
            for pid in _descendants(run.pid):
                if (started := _started_at(pid)) is not None:  # the latest name: Ray renames its workers
                    spawned[pid, started] = _name(pid) or spawned.get((pid, started), "")
            if log.exists() and _journaled(storage):  # see _journaled
                break
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no trial was journaled in time"
            time.sleep(0.1)
        assert not _holds_tensorflow(run.pid)  # trials run on Ray: the CLI stays light
        os.killpg(run.pid, signal.SIGINT)  # a terminal's Ctrl-C (Ray's workers have groups of their own)
        out, err = run.communicate(timeout=180)
        built_at_exit = _built(log)

        assert run.returncode == 130, (out, err)
        assert "interrupted" in err and "resume with: gridspec run" in err and "Traceback" not in err
        programs = {os.path.basename(name) for name in spawned.values()}
        assert {"raylet", "gcs_server"} <= programs and any(p.startswith("ray::") for p in programs), programs
        # Nothing the search started outlives it: neither what ran below it before Ctrl-C nor
        # anything else of its Ray instance (born later, or moved away from under it).
        left = _still_running(set(spawned) | _in_environment(marker), seconds=5)
        assert not left, f"Ray processes outlived the search: {[(pid, spawned.get((pid, t))) for pid, t in left]}"
        assert _built(log) == built_at_exit  # and no trial began after it exited

        printed = {int(n) for n in re.findall(r"^Model +\d+ of \d+\.\.\. trial (\d+)", out, re.M)}
        journaled = _journaled(storage)
        assert printed and printed <= journaled < set(range(1, 7))  # stopped early, nothing lost
        space = [(u, a) for u in (1, 2, 3) for a in ("tanh", "relu")]  # grid order: trial numbers
        # the trials running at Ctrl-C were let finish and recorded: whatever trained is journaled
        assert sorted(built_at_exit) == sorted(space[n - 1] for n in journaled)

        log.unlink()
        again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert f"resumed: {len(journaled)} of 6 trials already complete" in again.stdout
        assert sorted(_built(log)) == sorted(space[n - 1] for n in range(1, 7) if n not in journaled)
        assert {t.number for t in load(storage).trials} == set(range(1, 7))
        assert not _still_running(_in_environment(marker), seconds=5)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for pid, started in _in_environment(marker):  # a failed test leaves no Ray behind
            if _started_at(pid) == started:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
