"""Smaller things a demanding user met: a watch of a file that is no journal, the note when
``distribute=`` keeps trials alone, the time and group of a trial that failed inside a fused
group, and missing extras named together with how to install them from a clone too.
Real Keras, tiny models."""

from __future__ import annotations

import io
import sys
import time

import numpy as np
import pytest

import gridspec as gs
from gridspec.cli import main
from gridspec.errors import JournalError, MissingExtra, require_extras
from gridspec.journal import load
from gridspec.progress import Note

keras = pytest.importorskip("keras")


def train():
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])


def test_watching_a_file_that_is_no_journal_fails_at_once_as_show_does(tmp_path):
    from gridspec.display.watch import watch

    path = tmp_path / "notes.txt"
    path.write_text("not a journal at all\n")
    with pytest.raises(JournalError) as plain:
        load(path)
    started = time.monotonic()
    with pytest.raises(JournalError) as watched:
        watch(str(path), io.StringIO(), interval=0.1)
    assert time.monotonic() - started < 2  # no ten seconds of silence first
    assert str(watched.value) == str(plain.value)


@gs.grid(mode=["ok", "nometric", "build"])
def members(mode):
    if mode == "build":
        raise ValueError("no such layer")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mean_squared_error", metrics=["mae"] if mode == "ok" else [])
    return model


def test_a_member_that_failed_keeps_its_group_and_one_that_never_built_takes_no_time():
    result = members.search(epochs=1, steps_per_epoch=2, train=train, val=None, objective="mae")
    ok, nometric, build = result.trials
    assert ok.status is gs.TrialStatus.COMPLETE and ok.fused_with == (2,)
    assert nometric.status is gs.TrialStatus.FAILED and "objective 'mae' is not in the training history" in nometric.error
    assert nometric.fused_with == (1,)  # symmetric: each names the other
    assert build.status is gs.TrialStatus.FAILED and build.fused_with == () and build.duration == 0.0
    assert ok.duration > 0


def test_fuse_with_distribute_says_that_trials_train_alone():
    events: list = []
    members.search(epochs=1, steps_per_epoch=2, train=train, val=None, objective="loss", fuse=2,
                   distribute="mirrored", verbose=events.append)
    notes = [e.text for e in events if isinstance(e, Note)]
    assert "fuse=2: every trial trains alone (distribute= spreads each trial over devices)" in notes


def test_missing_extras_are_named_together_with_both_ways_to_install():
    with pytest.raises(MissingExtra) as info:
        require_extras([("gridspec_no_such_a", "plot", "--plot", "gridspec_no_such_a"),
                        ("json", "pandas", "to_dataframe()", "json"),
                        ("gridspec_no_such_b", "ray", "--executor ray", "gridspec_no_such_b")])
    assert str(info.value) == (
        '--plot needs gridspec_no_such_a and --executor ray needs gridspec_no_such_b; install them with '
        'pip install "gridspec[plot,ray]" (in a source checkout: pip install -e ".[plot,ray]")')


def test_the_cli_names_every_missing_extra_before_loading_anything(monkeypatch, capsys, tmp_path):
    for name in ("matplotlib", "tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    code = main(["run", "nowhere.py:build", "--plot", str(tmp_path / "p.png"), "--tensorboard", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == (
        'error: --plot needs matplotlib and --tensorboard needs tensorboard; install them with '
        'pip install "gridspec[plot,tensorboard]" (in a source checkout: pip install -e ".[plot,tensorboard]")\n')


@gs.grid(units=[1, 2, 3, 4, 5, 6])
def ladder(units):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mean_squared_error")
    return model


def test_an_asha_rung_line_comes_before_the_lines_of_the_trials_promoted_when_it_was_decided():
    # fused: rung 1 trains as one group, and its decision (in the strategy's ask, as it
    # promotes the last) comes before any trial of rung 2 trains. (With fuse=1, ASHA promotes
    # trial 1 while rung 1 still trains: its line may come first, by design.)
    from gridspec.progress import TrialFinished

    events: list = []
    ladder.search(strategy="asha", epochs=3, eta=3, steps_per_epoch=2, train=train, val=None,
                  verbose=events.append)
    order = [("rung", e.text) if isinstance(e, Note) and "Rung 1" in e.text else ("trial", e.trial.epochs)
             for e in events if isinstance(e, TrialFinished) or (isinstance(e, Note) and "Rung 1" in e.text)]
    promoted_at = order.index(next(o for o in order if o[0] == "rung"))
    assert "promoted" in order[promoted_at][1]
    assert all(epochs == 1 for kind, epochs in order[:promoted_at] if kind == "trial"), order
