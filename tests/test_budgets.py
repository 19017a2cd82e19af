"""ASHA and Hyperband searches with the tiny Keras model and data of ``test_halving``."""

from __future__ import annotations

import pytest

import gridspec as gs
from gridspec.display import format_event
from gridspec.progress import Note, TrialFinished, TrialStarted
from test_halving import SETTINGS, _interrupter, build

EVENTS: dict[str, list[object]] = {"asha": [], "hyperband": []}


@pytest.fixture(scope="module")
def asha():
    return build.search(strategy="asha", eta=3, verbose=EVENTS["asha"].append, **SETTINGS)


@pytest.fixture(scope="module")
def hyperband():
    return build.search(strategy="hyperband", eta=3, verbose=EVENTS["hyperband"].append, **SETTINGS)


@pytest.fixture(scope="module")
def full():
    return build.search(**SETTINGS)


def _same_curves(result, full):
    """Every trial's curve is the start of an uninterrupted run's: promotions continued."""
    for trial in result.trials:
        whole = full.trials[trial.number - 1]
        for key, curve in trial.history.items():
            assert curve == pytest.approx(whole.history[key][: trial.epochs], rel=1e-6)


def test_asha_trains_every_combination_once_and_promotes_without_waiting(asha, full):
    assert [t.number for t in asha.trials] == list(range(1, 7))
    statuses = {(t.status, t.epochs) for t in asha.trials}
    assert statuses == {(gs.TrialStatus.PRUNED, 1), (gs.TrialStatus.COMPLETE, 3)}
    assert 2 <= len(asha.completed) <= 3  # 6 // 3, plus one an early promotion got wrong
    assert sum(t.epochs for t in asha.trials) < sum(t.epochs for t in full.trials)
    assert asha.best.epochs == 3 and asha.best_params in [t.params for t in full.ranked()[:3]]
    _same_curves(asha, full)
    notes = [e.text for e in EVENTS["asha"] if isinstance(e, Note)]
    assert notes[0].startswith("Rung 1 (1 epoch): 6 trained; promoted ")
    assert notes[1].startswith(f"Rung 2 (3 epochs): {len(asha.completed)} trained; done; best trial ")
    lines = [format_event(e) for e in EVENTS["asha"] if isinstance(e, TrialFinished)]
    assert [line.split("...")[0] for line in lines if " of 6" in line] == [f"Model {i} of 6" for i in range(1, 7)]


def test_hyperband_deals_the_grid_to_two_brackets(hyperband, full):
    assert [t.number for t in hyperband.trials] == list(range(1, 7))
    # brackets (1 -> 3 epochs) with 4 combinations and (3 epochs) with 2: 4 + 1*2 + 2*3
    assert sum(t.epochs for t in hyperband.trials) == 12 < 18
    assert [t.status for t in hyperband.trials].count(gs.TrialStatus.PRUNED) == 3
    assert hyperband.best.epochs == 3 and hyperband.best_params in [t.params for t in full.ranked()[:3]]
    _same_curves(hyperband, full)
    # the brackets run side by side (bracket 2 trains while bracket 1's rung 2 waits for its
    # rung 1; fused, both first rungs train in one go), so their lines interleave
    notes = [e.text for e in EVENTS["hyperband"] if isinstance(e, Note)]
    expected = ["Bracket 1 of 2: Rung 1 (1 epoch): 4 trained; promoted 1 to 3 epochs",
                "Bracket 1 of 2: Rung 2 (3 epochs): 1 trained; done; best trial ",
                "Bracket 2 of 2: Rung 1 (3 epochs): 2 trained; done; best trial "]
    assert len(notes) == 3 and all(any(n.startswith(e) for n in notes) for e in expected), notes
    assert notes.index(next(n for n in notes if n.startswith(expected[0]))) < notes.index(
        next(n for n in notes if n.startswith(expected[1])))
    finished = [format_event(e) for e in EVENTS["hyperband"] if isinstance(e, TrialFinished)]
    assert sorted(line.split("...")[0] for line in finished) == sorted([
        "Model 1 of 4", "Model 2 of 4", "Model 3 of 4", "Model 4 of 4", "Model 1 of 1",
        "Model 1 of 2", "Model 2 of 2"])


@pytest.mark.parametrize("strategy", ["asha", "hyperband"])
def test_a_resumed_search_trains_nothing_twice(tmp_path, strategy, request):
    uninterrupted = request.getfixturevalue(strategy)
    storage = str(tmp_path / "search.sqlite")
    interrupter = _interrupter()  # Ctrl-C as the first 3-epoch run starts
    first: list[object] = []
    with pytest.raises(gs.SearchInterrupted):  # fuse=1: Ctrl-C lands between two trials
        build.search(strategy=strategy, storage=storage, callbacks=[interrupter()],
                     verbose=first.append, fuse=1, **SETTINGS)
    journaled = {(e.trial.number, e.trial.epochs) for e in first if isinstance(e, TrialFinished)}
    assert journaled and (tmp_path / "search.sqlite.checkpoints").is_dir()
    interrupter.armed = False
    again: list[object] = []
    resumed = build.search(strategy=strategy, storage=storage, callbacks=[interrupter()],
                           verbose=again.append, **SETTINGS)
    trained = [(e.number, e.epochs) for e in again if isinstance(e, TrialStarted)]
    assert trained and not set(trained) & journaled and len(set(trained)) == len(trained)
    assert [(t.status, t.epochs) for t in resumed.trials] == [(t.status, t.epochs) for t in uninterrupted.trials]
    for a, b in zip(resumed.trials, uninterrupted.trials):
        assert a.score == pytest.approx(b.score, rel=1e-6)
    assert not (tmp_path / "search.sqlite.checkpoints").exists()


def test_the_cli_runs_hyperband_and_prints_each_bracket(write_module):
    from conftest import run_cli
    from test_halving import CLI_MODULE

    path = write_module(CLI_MODULE)
    done = run_cli("run", f"{path}:build", "--epochs", "3", "--steps-per-epoch", "2",
                   "--strategy", "hyperband", "--eta", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("Model ") for line in lines) == 4 + 1 + 2
    assert any(line.startswith("Bracket 1 of 2: Rung 1 (1 epoch): 4 trained; promoted 1") for line in lines)
    assert any(line.startswith("Bracket 2 of 2: Rung 1 (3 epochs): 2 trained; done") for line in lines)
    assert "Traceback" not in done.stderr


def test_asha_on_two_worker_processes_continues_promoted_trials():
    """ASHA's reason to exist: several workers. A promoted trial continues from the
    checkpoint folder the workers share, in whichever process is free; its curve is still
    the full run's."""
    import workers_grid

    settings = dict(epochs=3, steps_per_epoch=3, validation_steps=2, seed=0)
    events: list[object] = []
    result = workers_grid.build.search(strategy="asha", workers=2, verbose=events.append, **settings)
    started = [(e.number, e.start_epoch, e.epochs) for e in events if isinstance(e, TrialStarted)]
    assert len(set(started)) == len(started) and {n for n, s, _ in started if s == 0} == {1, 2, 3, 4}
    assert {(s, e) for _, s, e in started} == {(0, 1), (1, 3)}  # promotions continue from epoch 1
    assert result.best.epochs == 3 and [t.number for t in result.trials] == [1, 2, 3, 4]
    full = workers_grid.build.search(**settings)
    _same_curves(result, full)
