"""``gridspec show`` and ``show --watch`` of a halving-type search say what the search said:
its pruned trials are PRUNED (counted, ranked and never named best), and while it runs, a
trial that waits for its rung to end is not counted as done. Real Keras, tiny models."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import gridspec as gs
from gridspec.display.watch import progress_line
from gridspec.journal import SQLiteBackend, load, replay

keras = pytest.importorskip("keras")


def train():
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])


@gs.grid(units=[1, 2, 3, 4, 5, 6])
def build(units):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mean_squared_error")
    return model


@pytest.mark.parametrize("strategy", ["halving", "asha"])
def test_show_counts_ranks_and_names_the_best_as_the_search_did(tmp_path, strategy):
    path = tmp_path / "s.sqlite"
    result = build.search(strategy=strategy, epochs=3, eta=3, steps_per_epoch=2, train=train, val=None,
                          storage=str(path))
    assert result.pruned  # the test means something
    stored = load(path)
    assert [(t.number, t.status) for t in stored.trials] == [(t.number, t.status) for t in result.trials]
    shown = stored.result()
    assert [t.number for t in shown.ranked()] == [t.number for t in result.ranked()]
    assert shown.best.number == result.best.number
    report = stored.report(top=None)
    assert (f"trials: {len(result.completed)} complete, 0 failed, {len(result.pruned)} pruned, "
            f"0 running or interrupted\n") in report
    assert f"Best params found: {result.best_params!r}" in report
    assert "(pruned)" in report  # the leaderboard tags them as the search's own does


def test_watch_does_not_count_a_trial_waiting_for_its_rung_as_done(tmp_path):
    path = tmp_path / "s.sqlite"
    build.search(strategy="halving", epochs=3, eta=3, steps_per_epoch=2, train=train, val=None, storage=str(path))
    backend = SQLiteBackend(path, writable=False)
    try:
        logs = backend.read_logs()
    finally:
        backend.close()
    # the journal as a reader saw it when the last rung's first trial had just started
    cut = next(i for i, log in enumerate(logs) if log["op"] == "start" and log["epochs"] == 3)
    running = attrs.evolve(replay(logs[:cut + 1])[-1], live=True)
    number = logs[cut]["number"]
    assert progress_line(running).startswith(f"0 of 6 trials (0 complete, 0 failed); running: trial {number}; "
                                             f"5 waiting for their rung to end")
    assert "trials: 0 complete, 0 failed, 0 pruned, 1 running or interrupted, 5 waiting for their rung to end" in \
        running.report()


def test_show_leaves_nothing_beside_a_finished_journal_and_a_resume_counts_trials(tmp_path):
    path = tmp_path / "s.sqlite"
    settings = dict(strategy="halving", epochs=3, eta=3, steps_per_epoch=2, train=train, val=None, storage=str(path))
    build.search(**settings)
    beside = sorted(p.name for p in tmp_path.iterdir())
    load(path).report()
    assert sorted(p.name for p in tmp_path.iterdir()) == beside  # no -wal, no -shm left by a reader
    events: list = []
    build.search(**settings, verbose=events.append)  # every trial done: nothing trains
    notes = [e.text for e in events if type(e).__name__ == "Note"]
    assert f"resumed: 6 of 6 trials already complete in {path}" in notes  # not 8: rung runs


class _CtrlCAsRung2Starts(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        if self.params["epochs"] == 3:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGINT)  # a first Ctrl-C: that trial finishes


def test_an_interrupted_halving_search_counts_trials_not_rung_runs():
    with pytest.raises(gs.SearchInterrupted) as info:
        build.search(strategy="halving", epochs=3, eta=3, steps_per_epoch=2, train=train, val=None, fuse=1,
                     callbacks=[_CtrlCAsRung2Starts()])
    # rung 1: 6 trained, 4 pruned; rung 2: the first promoted trial finished, the other never started
    assert str(info.value).startswith("search interrupted after 5 of 6 trials; ")
