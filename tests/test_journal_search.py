"""Searches with ``storage=``: resume, stale-result detection, failure isolation, Ctrl-C and
SIGKILL, through ``search()`` and the command line. Real Keras, tiny models."""

from __future__ import annotations

import linecache
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gridspec as gs
from gridspec.errors import JournalError, SearchError, SearchInterrupted
from gridspec.journal import load
from gridspec.progress import Note
from gridspec.registry import load_module

keras = pytest.importorskip("keras")

REPO = Path(__file__).resolve().parents[1]
BUILDS: list[tuple] = []


def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(16, 16)).astype("float32")
        yield x, np.tanh(x[:, :1])


def dense(units: int, lr: float = 0.05, loss: object = "mean_squared_error") -> keras.Model:
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(units, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss)
    return model


@gs.grid(units=[2, 4, 8], lr=[0.05, 0.01])
def build(units, lr):
    BUILDS.append((units, lr))
    return dense(units, lr)


SETTINGS = dict(epochs=2, steps_per_epoch=2, train=train, val=None)
# Tests of what happens *between* trials (build order, Ctrl-C after "the trial in progress",
# max_failures in a row, a kill between two trials) train one trial at a time: with fused
# trials the unit of work is a group, journaled when the group finishes (docs/journal.md);
# tests/test_fused_search.py checks the same journal guarantees for groups.
ALONE = dict(SETTINGS, fuse=1)


@pytest.fixture(autouse=True)
def _fresh_builds():
    BUILDS.clear()


def notes(sink: list) -> list[str]:
    return [e.text for e in sink if isinstance(e, Note)]


# -- resume --------------------------------------------------------------------------------
def test_resume_keeps_completed_trials_without_training_them(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    first = build.search(max_trials=3, storage=path, **SETTINGS)
    assert BUILDS == [(2, 0.05), (2, 0.01), (4, 0.05)]

    BUILDS.clear()
    events: list = []
    full = build.search(storage=path, verbose=events.append, **SETTINGS)
    assert BUILDS == [(4, 0.01), (8, 0.05), (8, 0.01)]  # only the three not yet trained
    assert "resumed: 3 of 6 trials already complete in " + path in notes(events)
    assert full.trials[:3] == first.trials
    assert [t.number for t in full.trials] == [1, 2, 3, 4, 5, 6]

    BUILDS.clear()
    again = build.search(storage=path, **SETTINGS)
    assert BUILDS == []
    assert again.trials == full.trials and again.best_params == full.best_params
    # the same search without storage gives the same scores: the journal changed nothing
    assert [t.score for t in build.search(**SETTINGS).trials] == [t.score for t in full.trials]


def test_params_come_from_the_grid_not_from_the_json(tmp_path: Path) -> None:
    @gs.grid(opt=[keras.optimizers.SGD, keras.optimizers.Adam], units=[(4, 2)])
    def build_opt(opt, units):
        BUILDS.append(opt)
        model = keras.Sequential([keras.Input((16,)), *[keras.layers.Dense(u) for u in units], keras.layers.Dense(1)])
        model.compile(optimizer=opt(0.01), loss="mse")
        return model

    path = tmp_path / "s.sqlite"
    build_opt.search(storage=str(path), **SETTINGS)
    BUILDS.clear()
    resumed = build_opt.search(storage=str(path), **SETTINGS)
    assert BUILDS == []
    assert resumed.trials[1].params == {"opt": keras.optimizers.Adam, "units": (4, 2)}
    stored = load(path).latest[2].params["opt"]
    assert isinstance(stored, str) and stored.endswith(".Adam")  # text in the file, not the class


def test_fresh_starts_a_new_search_in_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    build.search(max_trials=2, storage=str(path), **SETTINGS)
    BUILDS.clear()
    events: list = []
    build.search(max_trials=2, storage=str(path), resume=False, verbose=events.append, **SETTINGS)
    assert len(BUILDS) == 2
    assert f"storage {path}: new search 2 (the 1 earlier in the file are kept)" in notes(events)
    assert load(path).id == 2 and sorted(load(path, 1).latest) == [1, 2]


MODULE = '''
import numpy as np
import keras
import gridspec as gs

BUILDS = []

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(16, 16)).astype("float32")
        yield x, x[:, :1]

@gs.grid(units=[2, 4])
def build(units):
    BUILDS.append(units)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(units), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model
'''


def load_fresh(path: Path, text: str):
    path.write_text(textwrap.dedent(text))
    sys.modules.pop(path.stem, None)
    linecache.clearcache()
    return load_module(str(path))


@pytest.mark.parametrize("edit, expected", [
    (("units=[2, 4]", "units=[2, 4, 8]"), "grid axis 'units' changed from [2, 4] to [2, 4, 8]"),
    (("Dense(units)", "Dense(units, use_bias=False)"),
     "the source of the model function models_v.build() changed; first difference: "),
    (("x[:, :1]", "2 * x[:, :1]"), "the source of the training data factory models_v.train() changed"),
])
def test_a_changed_search_is_detected_and_nothing_trains(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    path = tmp_path / "s.sqlite"
    module = load_fresh(tmp_path / "models_v.py", MODULE)
    module.build.search(epochs=1, steps_per_epoch=2, storage=str(path))
    changed = load_fresh(tmp_path / "models_v.py", MODULE.replace(*edit))
    with pytest.raises(JournalError) as info:
        changed.build.search(epochs=1, steps_per_epoch=2, storage=str(path))
    message = str(info.value)
    assert message.startswith(f"{path} holds a different search (fingerprint ")
    assert expected in message
    assert message.endswith("Pass resume=False (--fresh) to start a new search in the same file "
                            "(the old one is kept), or give another storage path")
    assert changed.BUILDS == []
    assert len(changed.build.search(epochs=1, steps_per_epoch=2, storage=str(path), resume=False).trials) == len(changed.build.space)


def test_changed_settings_are_detected(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    build.search(max_trials=1, storage=path, **SETTINGS)
    with pytest.raises(JournalError, match=r"\(fingerprint \w+, 1 trial done\): steps_per_epoch changed from 2 to 3; seed changed from 0 to 1\. "):
        build.search(max_trials=1, storage=path, **{**SETTINGS, "seed": 1, "steps_per_epoch": 3})


def test_a_bad_storage_path_fails_before_training(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="in a directory that does not exist"):
        build.search(storage=str(tmp_path / "nope" / "s.sqlite"), **SETTINGS)
    assert BUILDS == []


# -- failure isolation ---------------------------------------------------------------------
def exploding_loss(y_true, y_pred):
    raise RuntimeError("loss exploded while fitting")


@gs.grid(mode=["ok", "build", "fit", "nan", "oom", "not_a_model"])
def fragile(mode):
    import tensorflow as tf

    BUILDS.append(mode)
    if mode == "build":
        raise ValueError("bad layer size -3")
    if mode == "oom":
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1000000,1000000]")
    if mode == "not_a_model":
        return "a string"
    if mode == "fit":
        return dense(2, loss=exploding_loss)
    if mode == "nan":
        return dense(2, loss=lambda y, p: keras.ops.mean(p) * float("nan"))
    return dense(2)


def test_every_kind_of_failure_is_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    result = fragile.search(storage=str(path), **ALONE)
    assert BUILDS == ["ok", "build", "fit", "nan", "oom", "not_a_model"]
    assert [t.status.value for t in result.trials] == ["COMPLETE"] + ["FAILED"] * 5
    errors = [t.error for t in result.trials[1:]]
    assert errors[0] == "ValueError: bad layer size -3"
    assert errors[1] == "RuntimeError: loss exploded while fitting"
    assert errors[2].startswith("NonFiniteObjective: objective loss was nan at epoch 1")
    assert errors[3] == "ResourceExhaustedError: OOM when allocating tensor with shape[1000000,1000000]"
    assert errors[4].startswith("GridError: fragile() must return a compiled keras.Model (got str)")
    stored = load(path)
    for t in stored.trials[1:]:
        assert t.status is gs.TrialStatus.FAILED and t.error and "Traceback (most recent call last)" in t.traceback
    assert stored.latest[2].traceback == result.trials[1].traceback
    assert result.best_params == {"mode": "ok"}
    fused = fragile.search(**SETTINGS)  # the same failures, each isolated, in a fused group
    assert [(t.status, t.error) for t in fused.trials] == [(t.status, t.error) for t in result.trials]


def test_max_failures_stops_quoting_the_last_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with pytest.raises(SearchError) as info:
        fragile.search(storage=str(path), max_failures=2, **ALONE)
    assert str(info.value) == ("stopped after 2 consecutive failed trials (max_failures=2); the last error "
                               "(trial 3) was RuntimeError: loss exploded while fitting")
    assert BUILDS == ["ok", "build", "fit"]
    assert [t.number for t in info.value.result.trials] == [1, 2, 3]
    assert sorted(load(path).latest) == [1, 2, 3]


def test_max_failures_must_be_positive() -> None:
    with pytest.raises(gs.GridSpecError, match=r"max_failures must be a positive integer or None \(got max_failures=0\)"):
        build.search(max_failures=0, **SETTINGS)


# -- Ctrl-C --------------------------------------------------------------------------------
@gs.grid(units=[2, 4, 8])
def interruptible(units):
    BUILDS.append(units)
    if units == 4:
        for _ in range(INTERRUPTS[0]):
            os.kill(os.getpid(), signal.SIGINT)
    return dense(units)


INTERRUPTS = [1]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_stops_after_the_current_trial_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    INTERRUPTS[0] = 1
    events: list = []
    with pytest.raises(SearchInterrupted) as info:
        interruptible.search(storage=str(path), verbose=events.append, **ALONE)
    assert BUILDS == [2, 4]
    assert [t.status.value for t in info.value.result.trials] == ["COMPLETE", "COMPLETE"]
    assert str(info.value) == (f"search interrupted after 2 of 3 trials; every finished trial is recorded in "
                               f"{path}: run the same search again to resume (gridspec run ... --storage {path})")
    assert "interrupted: stopping after the trial in progress is recorded (Ctrl-C again to stop at once)" in notes(events)
    assert sorted(load(path).latest) == [1, 2]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    BUILDS.clear()
    INTERRUPTS[0] = 0
    assert len(interruptible.search(storage=str(path), **ALONE).trials) == 3
    assert BUILDS == [8]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    INTERRUPTS[0] = 2
    with pytest.raises(SearchInterrupted) as info:
        interruptible.search(storage=str(path), **ALONE)
    assert [t.number for t in info.value.result.trials] == [1]
    assert load(path).running == (2,)  # started, never finished: it runs again on resume
    BUILDS.clear()
    INTERRUPTS[0] = 0
    interruptible.search(storage=str(path), **ALONE)
    assert BUILDS == [4, 8]


# -- SIGKILL in a subprocess ---------------------------------------------------------------
SCRIPT = '''
import os, signal, sys
import numpy as np
import keras
import gridspec as gs
from gridspec.display import Printer
from gridspec.progress import TrialFinished

UNITS, LRS = [2, 4, 8], [0.05, 0.01]
KILL = os.environ.get("KILL", "")
CURRENT = [0]

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(16, 16)).astype("float32")
        yield x, np.tanh(x[:, :1])

@gs.grid(units=UNITS, lr=LRS)
def build(units, lr):
    number = UNITS.index(units) * len(LRS) + LRS.index(lr) + 1
    CURRENT[0] = number
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write(f"{number}\\n")
    if KILL == f"build:{number}":
        os.kill(os.getpid(), signal.SIGKILL)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(units, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mean_squared_error")
    return model

class KillDuringFit(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if KILL == f"fit:{CURRENT[0]}" and batch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

printer = Printer()

def progress(event):
    printer(event)
    if isinstance(event, TrialFinished) and KILL == f"after:{event.trial.number}":
        os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    build.search(epochs=2, steps_per_epoch=3, storage=sys.argv[1], callbacks=[KillDuringFit()], verbose=progress,
                 fuse=1)
'''


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_search_killed_at_any_point_resumes_losing_and_retraining_nothing(tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "killable.py"
    script.write_text(SCRIPT)
    path = tmp_path / "s.sqlite"
    builds = tmp_path / "builds.log"

    def run(kill: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "KILL": kill, "BUILD_LOG": str(builds)}
        builds.write_text("")
        return subprocess.run([sys.executable, str(script), str(path)], env=env, capture_output=True,
                              text=True, timeout=300)

    def built() -> list[int]:
        return [int(line) for line in builds.read_text().split()]

    # between trials: trial 2 is recorded and reported, trial 3 not started
    assert run("after:2").returncode == -signal.SIGKILL
    assert built() == [1, 2]
    after_first = load(path)
    assert sorted(after_first.latest) == [1, 2] and after_first.running == ()
    # during fit: trial 3 completes, trial 4 dies mid-epoch
    assert run("fit:4").returncode == -signal.SIGKILL
    assert built() == [3, 4]
    assert sorted(load(path).latest) == [1, 2, 3] and load(path).running == (4,)
    # while building: trial 4 is rerun and recorded, trial 5 dies in the model function
    assert run("build:5").returncode == -signal.SIGKILL
    assert built() == [4, 5]
    assert sorted(load(path).latest) == [1, 2, 3, 4] and load(path).running == (5,)

    final = run("")
    assert final.returncode == 0, final.stderr
    assert built() == [5, 6]
    assert "resumed: 4 of 6 trials already complete" in final.stdout
    assert "; 1 interrupted run again" in final.stdout
    stored = load(path)
    assert [t.status.value for t in stored.trials] == ["COMPLETE"] * 6 and stored.running == ()
    assert stored.latest[1] == after_first.latest[1] and stored.latest[2] == after_first.latest[2]

    # the interrupted search scores exactly like an uninterrupted one (run here, in-process)
    monkeypatch.setenv("BUILD_LOG", str(tmp_path / "u.log"))
    monkeypatch.delenv("KILL", raising=False)
    module = load_module(str(script))
    uninterrupted = module.build.search(epochs=2, steps_per_epoch=3, callbacks=[module.KillDuringFit()])
    assert [t.score for t in uninterrupted.trials] == [t.score for t in stored.trials]


# -- the command line ----------------------------------------------------------------------
def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gridspec", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_storage_resume_fresh_and_show(tmp_path: Path) -> None:
    (tmp_path / "models_cli.py").write_text(textwrap.dedent(MODULE))
    target = ["run", "models_cli.py:build", "--steps-per-epoch", "2", "--storage", "runs.sqlite"]
    first = cli(*target, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "storage runs.sqlite: new search 1" in first.stdout
    assert "Model 2 of 2" in first.stdout
    best = [line for line in first.stdout.splitlines() if line.startswith("Best params found: ")]

    again = cli(*target, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resumed: 2 of 2 trials already complete in runs.sqlite" in again.stdout
    assert "Model " not in again.stdout  # nothing trained
    assert [line for line in again.stdout.splitlines() if line.startswith("Best params found: ")] == best

    shown = cli("show", "runs.sqlite", "--plot", "stored.png", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "trials: 2 complete, 0 failed, 0 pruned, 0 running or interrupted" in shown.stdout
    assert best[0] in shown.stdout
    assert "Plot written to stored.png" in shown.stdout
    assert (tmp_path / "stored.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    changed = cli(*target, "--epochs", "2", cwd=tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.startswith("error: runs.sqlite holds a different search")
    assert "epochs changed from 1 to 2" in changed.stderr and "Traceback" not in changed.stderr
    fresh = cli(*target, "--epochs", "2", "--fresh", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert "new search 2 (the 1 earlier in the file are kept)" in fresh.stdout


def test_cli_refuses_a_missing_directory_before_training(tmp_path: Path) -> None:
    (tmp_path / "models_cli.py").write_text(textwrap.dedent(MODULE))
    bad = cli("run", "models_cli.py:build", "--steps-per-epoch", "2", "--storage", "no/such/dir/s.sqlite",
              "--max-failures", "1", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: storage 'no/such/dir/s.sqlite' is in a directory that does not exist")
    assert "Model " not in bad.stdout and "Traceback" not in bad.stderr


def test_cli_max_failures_exits_1_quoting_the_last_error(tmp_path: Path) -> None:
    broken = MODULE.replace("    BUILDS.append(units)\n", "    raise ValueError(f'no room for {units} units')\n")
    (tmp_path / "models_broken.py").write_text(textwrap.dedent(broken))
    run = cli("run", "models_broken.py:build", "--steps-per-epoch", "2", "--storage", "s.sqlite",
              "--max-failures", "1", "--fuse", "1", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr == ("error: stopped after 1 consecutive failed trials (max_failures=1); the last "
                          "error (trial 1) was ValueError: no room for 2 units\n")
    assert "Model 1 of 2... trial 1 {'units': 2} FAILED: ValueError: no room for 2 units" in run.stdout
    assert "Model 2 of 2" not in run.stdout
    shown = cli("show", "s.sqlite", cwd=tmp_path)
    assert "trials: 0 complete, 1 failed, 0 pruned, 0 running or interrupted" in shown.stdout


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_cli_ctrl_c_records_the_trial_in_progress_and_says_how_to_resume(tmp_path: Path) -> None:
    stopper = MODULE.replace("    BUILDS.append(units)\n",
                             "    if units == 4:\n        import os, signal\n        os.kill(os.getpid(), signal.SIGINT)\n")
    stopper = stopper.replace("units=[2, 4]", "units=[2, 4, 8]")
    (tmp_path / "models_stop.py").write_text(textwrap.dedent(stopper))
    args = ["run", "models_stop.py:build", "--steps-per-epoch", "2", "--storage", "s.sqlite", "--fresh", "--fuse", "1"]
    run = cli(*args, cwd=tmp_path)
    assert run.returncode == 130
    assert "interrupted: stopping after the trial in progress is recorded (Ctrl-C again to stop at once)" in run.stdout
    assert "Model 2 of 3... trial 2 {'units': 4} score" in run.stdout and "Model 3 of 3" not in run.stdout
    assert run.stderr == (
        "interrupted: search stopped after 2 of 3 trials; every finished trial is recorded in s.sqlite\n"
        "resume with: gridspec run models_stop.py:build --steps-per-epoch 2 --storage s.sqlite --fuse 1\n"
    )
    assert sorted(load(tmp_path / "s.sqlite").latest) == [1, 2]
