"""Stopping a search: one Ctrl-C or SIGTERM stops a fused group at its next epoch end, the exit
status says the search was stopped even when the last trial then finished, the requested files
are written however little finished, and ``max_failures`` counts a streak inside a group as it
counts one between trials alone. Real CLI subprocesses and real Keras, tiny models.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import gridspec as gs
from conftest import cli_env, run_cli
from gridspec.errors import SearchError
from gridspec.journal import load

keras = pytest.importorskip("keras")

MODULE = """
import json, os
import numpy as np
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])

@gs.grid(units=[1, 2, 3])
def build(units):
    with open(os.environ["GS_TEST_LOG"], "a") as f:
        f.write(json.dumps(units) + "\\n")
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    return model
"""

EPOCHS = "100000"  # far more than the test waits for: only a stop ends these runs early


def _builds(log: Path) -> list[int]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _stop_a_running_group(tmp_path: Path, signum: int) -> tuple[subprocess.CompletedProcess[str], float, list[str]]:
    """Run the whole grid as one fused group (the default), signal the CLI once every member
    is built and training, and return what it printed and how long it took to stop."""
    (tmp_path / "long3.py").write_text(MODULE)
    log = tmp_path / "built.jsonl"
    args = ["run", "long3.py:build", "--epochs", EPOCHS, "--steps-per-epoch", "2", "--storage", "s.sqlite",
            "--json", "r.json", "--csv", "r.csv"]
    env = cli_env(GS_TEST_LOG=str(log))
    run = subprocess.Popen([sys.executable, "-m", "gridspec", *args], cwd=tmp_path, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_builds(log)) < 3:
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the group was not built in time"
            time.sleep(0.1)
        time.sleep(2.0)  # the group's step is traced and its first epochs train
        run.send_signal(signum)
        signalled = time.monotonic()
        out, err = run.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    return subprocess.CompletedProcess(args, run.returncode, out, err), took, args


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_one_ctrl_c_stops_a_fused_group_at_an_epoch_end_and_the_rerun_trains_exactly_its_trials(tmp_path):
    run, took, args = _stop_a_running_group(tmp_path, signal.SIGINT)
    assert run.returncode == 130, (run.stdout, run.stderr)
    assert took < 30  # an epoch end, not the group's 100000th epoch
    assert ("interrupted: stopping the running group of 3 trials at its next epoch end; its trials are not "
            "recorded and train again when the search is resumed (Ctrl-C again to stop at once)") in run.stdout
    assert "Model " not in run.stdout and "Traceback" not in run.stderr
    assert run.stderr.startswith("interrupted: search stopped after 0 of 3 trials; every finished trial is "
                                 "recorded in s.sqlite\nresume with: gridspec run long3.py:build")
    # the requested files are written even with nothing finished
    assert json.loads((tmp_path / "r.json").read_text())["trials"] == []
    assert (tmp_path / "r.csv").read_text().splitlines() == ["number"]
    assert "JSON written to r.json" in run.stdout and "CSV written to r.csv" in run.stdout
    stored = load(tmp_path / "s.sqlite")
    assert stored.trials == () and stored.running == (1, 2, 3)  # interrupted: they run again

    log = tmp_path / "built.jsonl"
    log.unlink()
    # the same search again (KERAS_MAX_EPOCHS, Keras's debugging cap, keeps the rerun short)
    again = run_cli(*args, cwd=tmp_path, env={"GS_TEST_LOG": str(log), "KERAS_MAX_EPOCHS": "2"})
    assert again.returncode == 0, again.stderr
    assert "resumed: 0 of 3 trials already complete in s.sqlite; 3 interrupted run again" in again.stdout
    assert sorted(_builds(log)) == [1, 2, 3]
    assert [t.status for t in load(tmp_path / "s.sqlite").trials] == [gs.TrialStatus.COMPLETE] * 3


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_one_sigterm_stops_a_fused_group_and_exits_143(tmp_path):
    run, took, _ = _stop_a_running_group(tmp_path, signal.SIGTERM)
    assert run.returncode == 143, (run.stdout, run.stderr)
    assert took < 30
    assert "stopping the running group of 3 trials at its next epoch end" in run.stdout
    assert run.stderr.startswith("terminated (SIGTERM): search stopped after 0 of 3 trials")
    assert json.loads((tmp_path / "r.json").read_text())["trials"] == []
    assert load(tmp_path / "s.sqlite").running == (1, 2, 3)


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_signal_in_the_last_trial_still_exits_as_stopped(write_module, tmp_path):
    source = MODULE.replace("    import keras\n", "    if units == 3:\n"
                            "        os.kill(os.getpid(), signal.SIGINT)\n    import keras\n")
    path = write_module(source.replace("import json, os\n", "import json, os, signal\n"))
    run = run_cli("run", f"{path}:build", "--epochs", "2", "--steps-per-epoch", "2", "--fuse", "1",
                  "--json", str(tmp_path / "r.json"), env={"GS_TEST_LOG": str(tmp_path / "built.jsonl")})
    assert run.returncode == 130, (run.stdout, run.stderr)
    assert "interrupted: stopping after the trial in progress is recorded" in run.stdout
    assert "Model 3 of 3... trial 3 {'units': 3} score" in run.stdout  # the last trial finished
    assert "3 trials (3 complete, 0 failed)" in run.stdout
    assert run.stderr.startswith("interrupted: search stopped after 3 of 3 trials")
    assert len(json.loads((tmp_path / "r.json").read_text())["trials"]) == 3


# -- max_failures: a streak inside a group counts as between trials alone ----------------------
def _train():
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])


@gs.grid(mode=["a", "b", "nan", "build", "c", "d"])
def streak(mode):
    if mode == "build":
        raise ValueError("no such layer")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    loss = (lambda y, p: keras.ops.mean(p) * float("nan")) if mode == "nan" else "mean_squared_error"
    model.compile(optimizer="sgd", loss=loss)
    return model


@pytest.mark.parametrize("fuse", [1, "auto"])
def test_max_failures_in_a_row_raise_whatever_the_grouping(fuse):
    with pytest.raises(SearchError) as info:
        streak.search(epochs=1, steps_per_epoch=2, train=_train, val=None, max_failures=2, fuse=fuse)
    assert str(info.value) == ("stopped after 2 consecutive failed trials (max_failures=2); the last error "
                               "(trial 4) was ValueError: no such layer")
    trials = info.value.result.trials
    assert [t.status.value for t in trials[:4]] == ["COMPLETE", "COMPLETE", "FAILED", "FAILED"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_files_are_written_when_a_second_ctrl_c_stops_before_anything_finished(write_module, tmp_path):
    source = MODULE.replace("    import keras\n", "    os.kill(os.getpid(), signal.SIGINT)\n"
                            "    os.kill(os.getpid(), signal.SIGINT)\n    import keras\n")
    path = write_module(source.replace("import json, os\n", "import json, os, signal\n"))
    run = run_cli("run", f"{path}:build", "--steps-per-epoch", "2", "--fuse", "1",
                  "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"),
                  env={"GS_TEST_LOG": str(tmp_path / "built.jsonl")})
    assert run.returncode == 130, (run.stdout, run.stderr)
    assert run.stderr.startswith("interrupted: search stopped after 0 of 3 trials")
    assert json.loads((tmp_path / "r.json").read_text())["trials"] == []
    assert (tmp_path / "r.csv").read_text() == "number\n"
