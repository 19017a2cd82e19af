"""Watching a search (docs/watching.md): the live display in a terminal, plain lines in a pipe,
training progress events (in-process and from worker processes), ``show --watch``."""

from __future__ import annotations

import io
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import gridspec as gs
from conftest import ROOT, batches, finish_cli, run_cli, start_cli
from gridspec.progress import BatchEnded, EpochEnded, Note, SearchStarted, TrialFinished, TrialStarted
from gridspec.result import Trial, TrialStatus

SLOW = '''
import time
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

@gs.val_data
def val():
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    return x, x[:, :1]

@gs.grid(act=["tanh", "relu"])
def build(act):
    time.sleep(SLEEP)  # a trial long enough to be seen running
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])
    m.compile(optimizer="sgd", loss="mse")
    return m
'''

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMES = re.compile(r"\d+(\.\d+)?s\b|\d+m\d+s|\d+h\d+m")


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    for key in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_TERMINAL"):
        env.pop(key, None)
    return env


def run_in_terminal(*args: str, timeout: float = 300, interrupt_after: bytes | None = None) -> tuple[int, str]:
    """``python -m gridspec ARGS`` with standard output in a pseudo-terminal (120x40);
    Ctrl-C (SIGINT) once ``interrupt_after`` has been printed."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "gridspec", *args], cwd=ROOT, env=_env(),
                            stdin=slave, stdout=slave, stderr=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
        if interrupt_after is not None and interrupt_after in b"".join(chunks):
            proc.send_signal(signal.SIGINT)
            interrupt_after = None
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def masked(lines: list[str]) -> list[str]:
    return [TIMES.sub("T", line) for line in lines]


def final_screen(text: str) -> list[str]:
    """What a terminal is left showing: the text without the erased live panel.

    The live panel is drawn after the plain lines and erased (cursor up, clear line) before
    the next line is printed; keeping only the text after each erase of a line and dropping
    what was later erased gives the lines a user scrolls back through.
    """
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        # every "\x1b[1A\x1b[2K" erases the line above; "\r\x1b[2K" clears the current one
        ups = raw.count("\x1b[1A")
        if ups:
            del lines[len(lines) - ups:]
        raw = raw.rsplit("\x1b[2K", 1)[-1]
        lines.append(ANSI.sub("", raw).rstrip("\r"))
    return [line for line in lines if line.strip()]


@pytest.fixture
def slow_module(write_module):
    return write_module(SLOW.replace("SLEEP", "0.6"), name="slowgrid")


def test_live_display_in_a_terminal_shows_progress_and_leaves_the_plain_output(slow_module):
    args = ["run", f"{slow_module}:build", "--epochs", "2", "--steps-per-epoch", "3"]
    piped_run = start_cli(*args)  # the same search into a pipe, side by side
    code, terminal = run_in_terminal(*args)
    assert code == 0, terminal
    piped = finish_cli(piped_run)
    assert piped.returncode == 0, piped.stderr
    # while it ran: the panel, with the overall progress and the running trial
    assert re.search(r"0/2 trials\s+[0-9.]+ of 4 epochs\s+elapsed", ANSI.sub("", terminal))
    assert re.search(r"running\s+trial 1\s+epoch [12]/2", ANSI.sub("", terminal))
    assert re.search(r"best so far\s+trial 1\s+val_loss", ANSI.sub("", terminal))
    assert "\x1b[" in terminal
    # at the end: exactly the plain lines a pipe gets (durations aside), the panel erased
    assert masked(final_screen(terminal)) == masked(piped.stdout.splitlines())
    assert "Traceback" not in terminal


def test_ctrl_c_in_a_terminal_erases_the_panel_and_restores_the_cursor(slow_module, tmp_path):
    storage = str(tmp_path / "s.sqlite")
    # --fuse 1: Ctrl-C stops after the trial in progress (with fused trials, the group in
    # progress: here both trials, so the search would simply finish)
    code, terminal = run_in_terminal("run", f"{slow_module}:build", "--epochs", "2", "--steps-per-epoch", "3",
                                     "--storage", storage, "--fuse", "1", interrupt_after=b"running")
    assert code == 130
    assert terminal.count("\x1b[?25l") == 1 and terminal.rindex("\x1b[?25h") > terminal.index("\x1b[?25l")
    screen = final_screen(terminal)
    assert not any("elapsed" in line or line.startswith("running") for line in screen), screen  # the panel is gone
    assert "interrupted: stopping after the trial in progress is recorded (Ctrl-C again to stop at once)" in screen, screen
    # what finished is reported on standard output (the "search stopped" note goes to stderr)
    assert any(line.startswith("1 trials (1 complete, 0 failed)") for line in screen), screen
    assert any(line.startswith("rank  trial") for line in screen), screen
    assert "Traceback" not in terminal


def test_a_pipe_and_no_live_get_only_the_plain_lines(slow_module):
    args = ["run", f"{slow_module}:build", "--epochs", "1", "--steps-per-epoch", "2"]
    piped_run = start_cli(*args)  # into a pipe, beside the --no-live one in a terminal below
    code, terminal = run_in_terminal(*args, "--no-live")
    piped = finish_cli(piped_run)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout and "\r" not in piped.stdout
    assert "elapsed" not in piped.stdout and "running" not in piped.stdout
    assert [line.split("...")[0] for line in piped.stdout.splitlines() if line.startswith("Model")] == [
        "Model 1 of 2", "Model 2 of 2"]
    assert code == 0, terminal
    assert "\x1b[" not in terminal and "elapsed" not in terminal
    assert masked(terminal.replace("\r\n", "\n").splitlines()) == masked(piped.stdout.splitlines())


def test_the_stream_decides_live_or_lines_whatever_the_environment_says(monkeypatch):
    import pty

    from gridspec.display import Printer, make_display
    from gridspec.display.live import LiveDisplay

    monkeypatch.setenv("FORCE_COLOR", "1")  # often set in CI: still no live view into a pipe
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TERM", "xterm")
    assert isinstance(make_display(io.StringIO()), Printer)
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as terminal:
        assert isinstance(make_display(terminal), LiveDisplay)
        assert isinstance(make_display(terminal, live=False), Printer)  # --no-live
        monkeypatch.setenv("TERM", "dumb")
        assert isinstance(make_display(terminal), Printer)
    os.close(master)


# -- the events a live view is drawn from --------------------------------------------------
@gs.train_data
def train():
    return batches(0, 3)


@gs.grid(units=[1, 2])
def small(units):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_running_trial_reports_each_epoch_and_its_batches_when_asked():
    events: list[object] = []

    class Wants:  # a display that shows batches (the live one does)
        wants_batches = True

        def __call__(self, event):
            events.append(event)

    small.search(epochs=2, steps_per_epoch=3, verbose=Wants(), fuse=1)
    epochs = [(e.number, e.epoch, e.epochs) for e in events if isinstance(e, EpochEnded)]
    assert epochs == [(1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)]
    assert all("loss" in e.logs and isinstance(e.logs["loss"], float) for e in events if isinstance(e, EpochEnded))
    first_batch = next(e for e in events if isinstance(e, BatchEnded))
    assert (first_batch.number, first_batch.epoch, first_batch.batch, first_batch.steps) == (1, 1, 1, 3)
    kinds = [type(e).__name__ for e in events if e.__class__ in (TrialStarted, EpochEnded, TrialFinished)]
    assert kinds[:4] == ["TrialStarted", "EpochEnded", "EpochEnded", "TrialFinished"]

    fused: list[object] = []  # trained together: both trials' epochs arrive, each in order
    small.search(epochs=2, steps_per_epoch=3, verbose=fused.append)
    together = [(e.number, e.epoch) for e in fused if isinstance(e, EpochEnded)]
    assert together == [(1, 1), (2, 1), (1, 2), (2, 2)]

    plain: list[object] = []
    small.search(epochs=1, steps_per_epoch=2, verbose=plain.append)  # no wants_batches: epochs only
    assert not any(isinstance(e, BatchEnded) for e in plain)
    assert sum(isinstance(e, EpochEnded) for e in plain) == 2


def test_worker_processes_send_their_epochs_back(tmp_path):
    events: list[object] = []
    small.search(epochs=2, steps_per_epoch=2, executor="process", workers=1, verbose=events.append)
    epochs = sorted((e.number, e.epoch) for e in events if isinstance(e, EpochEnded))
    assert epochs == [(1, 1), (1, 2), (2, 1), (2, 2)]


def _render(display) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(display.render())
    return re.sub(r" +", " ", buffer.getvalue())  # column widths aside


def _trial(number, score, status=TrialStatus.COMPLETE, epochs=1, **params):
    return Trial(number=number, params=params, status=status, score=score, epochs=epochs,
                 best_epoch=epochs if score is not None else None, history={},
                 error="ValueError: boom" if status is TrialStatus.FAILED else None)


def test_the_live_panel_shows_the_rung_the_best_the_running_and_the_failures():
    from gridspec.display.live import LiveDisplay

    display = LiveDisplay(io.StringIO())  # the panel is drawn into the buffer, and read below
    try:
        _feed_and_check(display)
    finally:
        display.close()


def test_a_ctrl_c_note_in_the_middle_of_a_drawing_is_printed_after_it():
    # the signal handler runs on the main thread, wherever it is: here inside the panel's
    # refresh, which must finish before the note's line is printed (else a panel line stays)
    from gridspec.display.live import LiveDisplay

    display = LiveDisplay(io.StringIO())
    calls: list[str] = []
    try:
        display(SearchStarted(2, 2, "val_loss", "min", "grid", "lr (2)"))
        refresh = display._live.refresh

        def interrupted_refresh() -> None:
            calls.append("refresh begins")
            display(Note("interrupted: stopping"))  # as the Ctrl-C handler reports it
            calls.append("refresh ends")
            refresh()

        printed = display._print
        display._print = lambda text: (calls.append(f"print {text}"), printed(text))  # type: ignore[method-assign]
        display._live.refresh = interrupted_refresh
        display(TrialStarted(1, 2, 1, {"lr": 0.1}, 1))
    finally:
        display.close()
    assert calls[:3] == ["refresh begins", "refresh ends", "print interrupted: stopping"], calls
    assert "interrupted: stopping" in display.stream.getvalue()


def _feed_and_check(display) -> None:
    display(SearchStarted(8, 6, "val_loss", "min", "halving", "lr (6)"))
    for n in (1, 2, 3):
        display(TrialStarted(n, 6, n, {"lr": n / 10}, 1, rung=0))
    display(EpochEnded(3, 1, 1, {"loss": 0.5, "val_loss": 0.75}))
    display(BatchEnded(2, 1, 4, 10, {"loss": 0.25}))
    display(TrialFinished(1, 6, _trial(1, 0.3, lr=0.1), None))
    display(TrialFinished(2, 6, _trial(2, None, TrialStatus.FAILED, lr=0.2), None))
    text = _render(display)
    assert re.search(r"2/8 trials elapsed \S+ ETA", text)
    assert "rung 1 epoch: 2 of 6 trained" in text
    assert "best so far trial 1 val_loss 0.3 (epoch 1/1) lr=0.1" in text
    assert "running trial 3 epoch 1/1 loss 0.5 val_loss 0.75 lr=0.3" in text
    assert "running trial 2" not in text  # finished
    assert "failed trial 2: ValueError: boom" in text
    display(TrialStarted(1, 2, 1, {"lr": 0.1}, 3, start_epoch=1, rung=1))  # promoted to the next rung
    assert "rung 3 epochs: 0 of 2 trained" in _render(display)
    assert "trial 1 epoch 2/3" in _render(display)


# -- show --watch ------------------------------------------------------------------------------
def _start(*args: str, **kwargs) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "gridspec", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_show_watch_follows_a_search_in_another_process_and_returns_when_it_ends(tmp_path, write_module):
    module = write_module(SLOW.replace("SLEEP", "1.0"), name="watched")
    storage = str(tmp_path / "search.sqlite")
    watcher = _start("show", storage, "--watch", "--interval", "0.2")  # before the file exists
    search = _start("run", f"{module}:build", "--storage", storage, "--epochs", "1", "--steps-per-epoch", "2",
                    "--fuse", "1")  # one trial at a time: the watcher sees trial 2 running
    run_out, run_err = search.communicate(timeout=300)
    assert search.returncode == 0, run_err
    searched_at = time.monotonic()
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert time.monotonic() - searched_at < 10  # it noticed the end on its own
    lines = out.splitlines()
    assert lines[0].startswith(f"waiting for {storage}")
    progress = [line for line in lines if re.match(r"\[\d\d:\d\d:\d\d\] ", line)]
    assert any("running: trial 1" in line for line in progress)  # seen while trial 1 trained
    assert any(re.search(r"1 of 2 trials \(1 complete, 0 failed\); running: trial 2; best so far: trial 1", line)
               for line in progress)
    assert "2 of 2 trials (2 complete, 0 failed); none running" in progress[-1]
    best = next(line for line in run_out.splitlines() if line.startswith("Best params found:"))
    assert best in lines  # the final report: the same best as the search printed
    assert "trials: 2 complete, 0 failed, 0 pruned, 0 running or interrupted" in out
    assert "Traceback" not in err


def test_show_watch_leaves_cleanly_on_ctrl_c(tmp_path):
    storage = str(tmp_path / "never.sqlite")
    watcher = _start("show", storage, "--watch", "--interval", "0.1")
    assert watcher.stdout is not None
    first = watcher.stdout.readline()  # imports done, waiting for the file
    assert first.startswith(f"waiting for {storage}")
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130
    assert "Traceback" not in err and err.strip() == "interrupted"


def test_show_watch_of_a_finished_search_prints_the_report_at_once(tmp_path):
    storage = str(tmp_path / "done.sqlite")
    small.search(epochs=1, steps_per_epoch=2, storage=storage)
    proc = run_cli("show", storage, "--watch")
    assert proc.returncode == 0, proc.stderr
    assert "2 of 2 trials (2 complete, 0 failed); none running" in proc.stdout
    assert "trials: 2 complete, 0 failed, 0 pruned, 0 running or interrupted" in proc.stdout


def test_show_interval_must_be_positive():
    proc = run_cli("show", "x.sqlite", "--watch", "--interval", "0")
    assert proc.returncode == 2
    assert "must be a positive number of seconds, such as 0.5 (got '0')" in proc.stderr


# -- learning curves in the plot ---------------------------------------------------------------
@gs.grid(units=[1, 2, 3, 4])
def four(units):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", head[16:24])


def _curve_panel(figure):
    (panel,) = [ax for ax in figure.axes if ax.get_title(loc="left").startswith("Learning curves: ")]
    return panel


@pytest.mark.parametrize("strategy", ["grid", "halving"])
def test_plot_draws_learning_curves_with_the_rungs_of_halving(tmp_path, strategy):
    from gridspec.plot import draw

    result = four.search(epochs=2, steps_per_epoch=2, strategy=strategy,
                         **({"eta": 2} if strategy == "halving" else {}))
    panel = _curve_panel(draw(result))
    title = panel.get_title(loc="left")
    lines = [line for line in panel.get_lines() if line.get_label().startswith("#")]
    assert len(lines) == 4  # one curve per trial (the best 8 at most)
    by_trial = {int(line.get_label()[1:].split()[0]): list(line.get_ydata()) for line in lines}
    for t in result.trials:
        assert by_trial[t.number] == pytest.approx(t.history["loss"])  # the objective per epoch
    dashed = [line for line in panel.get_lines() if line.get_linestyle() == "--"]
    if strategy == "grid":
        assert title == "Learning curves: loss per epoch of the best 4 trials (dots: best epoch)"
        assert not dashed and {len(v) for v in by_trial.values()} == {2}
    else:  # rung 1: four trials of 1 epoch; rung 2: the best two, to 2 epochs
        assert title.endswith("dashed lines: where each of the 2 rungs ends")
        assert [line.get_xdata()[0] for line in dashed] == [1.5]
        assert sorted(len(v) for v in by_trial.values()) == [1, 1, 2, 2]
    path = tmp_path / f"{strategy}.png"
    width, height = png_size(result.plot(str(path)))
    assert path.exists() and width >= 800 and height >= 600


# -- TensorBoard as a user sees it ---------------------------------------------------------------
def _plugin_records(folder: str, plugin: str = "hparams") -> list:
    import glob

    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for event in LegacyEventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == plugin:
                    out.append(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
    return out


def _scalars(folder: str, tag: str) -> dict[int, float]:
    """step -> value of a scalar as TensorBoard reads it back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(folder)
    accumulator.Reload()
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)}


def val_data():  # passed as val= (a @val_data here would change the other searches' objective)
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    return x, -np.tanh(x[:, :1])  # the opposite of training's target: val_loss rises as it learns


@gs.grid(lr=[0.3, 0.001])
def tb_grid(lr):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


def _session_while_training(logs: str):
    """A user callback that reads trial 1's TensorBoard run while trial 1 trains."""
    import keras

    seen: dict[str, list] = {}

    class Look(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs_=None):
            run = os.path.join(logs, "trial-0001")
            if epoch == 0 and "start" not in seen and os.path.isdir(run):
                records = _plugin_records(run)
                seen["start"] = [r for r in records if r.HasField("session_start_info")]
                seen["end"] = [r for r in records if r.HasField("session_end_info")]
                seen["experiment"] = [r for r in records if r.HasField("experiment")]
            if epoch == 1 and "curve" not in seen:  # epoch 0's curve point is on disk already
                seen["curve"] = _scalars(os.path.join(logs, "trial-0001", "validation"), "epoch_loss")

    return Look(), seen


def test_tensorboard_runs_as_a_user_reads_them(tmp_path):
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    logs = str(tmp_path / "logs")
    look, seen = _session_while_training(logs)
    result = tb_grid.search(epochs=4, steps_per_epoch=3, train=train, val=val_data, tensorboard_dir=logs,
                            callbacks=[look])
    # (4) a running trial is in the HParams dashboard: its session starts as the trial starts
    assert len(seen["start"]) == 1 and seen["end"] == [] and len(seen["experiment"]) == 1
    assert seen["start"][0].session_start_info.hparams["lr"].number_value == pytest.approx(0.3)
    assert list(seen["curve"]) == [0]  # the scalars of a running trial: flushed epoch by epoch
    # (3) no empty "." run: the root holds only the trials' runs
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logs)
    multiplexer.Reload()
    assert "." not in multiplexer.Runs()
    assert sorted(os.listdir(logs)) == ["trial-0001", "trial-0002"]
    for t in result.trials:
        run = os.path.join(logs, f"trial-{t.number:04d}")
        (experiment,) = [r.experiment for r in _plugin_records(run) if r.HasField("experiment")]
        # (2) the one metric column is the best-epoch score, named after the objective
        assert [(m.name.tag, m.display_name) for m in experiment.metric_infos] == [("score", "val_loss (best epoch)")]
        curve = _scalars(os.path.join(run, "validation"), "epoch_loss")  # Keras: steps 0, 1, 2, 3
        assert sorted(curve) == [0, 1, 2, 3]
        assert [curve[s] for s in range(4)] == pytest.approx(t.history["val_loss"], rel=1e-5)
        # (1) the score sits on its curve: at the 0-based step of the best epoch, with its value
        (score,) = _scalars(run, "score").items()
        assert score == (t.best_epoch - 1, pytest.approx(t.score, rel=1e-6))
        assert curve[score[0]] == pytest.approx(t.score, rel=1e-5)
    assert any(t.best_epoch < t.epochs for t in result.trials), "the best epoch should not always be the last"


# -- layering ------------------------------------------------------------------------------------
def _modules_after(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    probe = f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in " \
            f"('rich', 'keras', 'tensorflow') or m.startswith('gridspec.display')))"
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout)  # a list of module names


def test_events_are_plain_data_and_the_displays_are_imported_only_when_used():
    assert _modules_after("import gridspec.progress, gridspec.engine, gridspec.cli") == []
    loaded = _modules_after("import gridspec.display, gridspec.display.live, gridspec.display.watch")
    assert "gridspec.display" in loaded and not any(m.split(".")[0] in ("keras", "tensorflow") for m in loaded)
