"""Successive halving: the pure strategy (no TensorFlow) and searches with tiny Keras models."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import gridspec as gs
from gridspec.strategies import Decision, HalvingStrategy, Proposal, make_strategy
from gridspec.strategies.halving import ladder


# -- the strategy, driven by hand ------------------------------------------------------------
def drive(plan: HalvingStrategy, score=lambda p: float(p.index)) -> list[Proposal]:
    """Run a strategy to the end, one proposal at a time; return every proposal."""
    seen: list[Proposal] = []
    while True:
        proposal = plan.ask()
        if proposal is Decision.STOP:
            return seen
        assert isinstance(proposal, Proposal), "one trial in flight never leaves a rung waiting"
        seen.append(proposal)
        plan.tell(proposal, score(proposal))


@pytest.mark.parametrize(
    "epochs, eta, min_epochs, expected",
    [(9, 3, 1, (1, 3, 9)), (3, 3, 1, (1, 3)), (1, 3, 1, (1,)), (100, 3, 1, (1, 4, 11, 33, 100)),
     (8, 2, 1, (1, 2, 4, 8)), (9, 3, 3, (3, 9)), (9, 3, 20, (9,))],
)
def test_the_ladder_of_budgets_climbs_by_eta_to_epochs(epochs, eta, min_epochs, expected):
    assert ladder(epochs, eta, min_epochs) == expected


def test_48_combinations_spend_110_epochs_instead_of_432():
    plan = HalvingStrategy(48, 9, eta=3)
    proposals = drive(plan)
    assert [len([p for p in proposals if p.rung == r]) for r in range(3)] == [48, 16, 5]
    assert sum(p.epochs - p.start_epoch for p in proposals) == 48 * 1 + 16 * 2 + 5 * 6
    assert {p.index for p in proposals if p.epochs == 9} == {0, 1, 2, 3, 4}  # lowest scores win
    assert plan.pruned == frozenset(range(5, 48))
    assert all(p.start_epoch == {0: 0, 1: 1, 2: 3}[p.rung] for p in proposals)


def test_a_rung_waits_for_all_of_its_trials_before_promoting():
    plan = HalvingStrategy(4, 4, eta=2)
    first = [plan.ask() for _ in range(4)]
    assert plan.ask() is Decision.WAIT
    for p in first[:3]:
        plan.tell(p, 1.0)
    assert plan.ask() is Decision.WAIT
    plan.tell(first[3], 0.5)
    (outcome,) = plan.take_outcomes()
    assert outcome.promoted == (4, 1) and outcome.next_epochs == 2  # best first, ties by number
    assert plan.ask() == Proposal(index=0, epochs=2, start_epoch=1, rung=1)


def test_max_direction_promotes_the_highest_scores_and_failures_never():
    plan = HalvingStrategy(6, 3, eta=3, direction="max")
    drive(plan, score=lambda p: None if p.index == 5 else float(p.index))
    assert plan.pruned == frozenset({0, 1, 2})  # 5 failed: not pruned, not promoted
    outcomes = plan.take_outcomes()
    assert outcomes[0].promoted == (5, 4) and outcomes[0].failed == 1


def test_a_lone_survivor_goes_straight_to_the_full_budget():
    proposals = drive(HalvingStrategy(3, 27, eta=3))
    assert [(p.epochs, p.start_epoch) for p in proposals if p.rung == 1] == [(27, 1)]


def test_every_trial_failing_stops_after_the_first_rung():
    plan = HalvingStrategy(5, 9)
    assert len(drive(plan, score=lambda p: None)) == 5
    assert plan.pruned == frozenset()


def test_max_trials_samples_the_first_rung_with_the_seed():
    a = drive(HalvingStrategy(1000, 3, max_trials=9, seed=1))
    b = drive(HalvingStrategy(1000, 3, max_trials=9, seed=1))
    assert a == b and len({p.index for p in a}) == 9 and max(p.index for p in a) > 8
    assert make_strategy("halving", size=1000, epochs=3, max_trials=9, seed=1).total == 9


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 200), epochs=st.integers(1, 30), eta=st.integers(2, 5),
       seed=st.integers(0, 3))
def test_property_each_combination_runs_once_per_rung_and_budgets_only_grow(size, epochs, eta, seed):
    scores = np.random.default_rng(seed).normal(size=size)
    plan = HalvingStrategy(size, epochs, eta=eta)
    proposals = drive(plan, score=lambda p: float(scores[p.index]))
    assert sorted(p.index for p in proposals if p.rung == 0) == list(range(size))
    reached: dict[int, int] = {}
    for p in proposals:
        assert p.start_epoch == reached.get(p.index, 0) < p.epochs <= epochs
        reached[p.index] = p.epochs
    finishers = [i for i, e in reached.items() if e == epochs]
    assert finishers and int(np.argmin(scores)) in finishers  # the best is never pruned
    assert plan.pruned == {i for i, e in reached.items() if e < epochs}
    assert sum(reached.values()) <= size * epochs


# -- searches with a tiny Keras model ----------------------------------------------------------
FEATURES = 16
WEIGHTS = np.random.default_rng(7).normal(size=(FEATURES, 1)).astype("float32")


def train():
    rng = np.random.default_rng(1)
    for _ in range(8):
        x = rng.normal(size=(32, FEATURES)).astype("float32")
        yield x, np.tanh(x @ WEIGHTS / 4)


def val():
    rng = np.random.default_rng(2)
    for _ in range(2):
        x = rng.normal(size=(32, FEATURES)).astype("float32")
        yield x, np.tanh(x @ WEIGHTS / 4)


def _counting_layer():
    import keras

    class StepCounter(keras.layers.Layer):
        """Counts training steps in a non-trainable weight: state a rebuilt model would lose."""

        def build(self, shape):
            self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="steps")

        def call(self, x, training=False):
            if training:
                self.steps.assign_add(1.0)
            return x

    return StepCounter()


@gs.grid(units=[2, 8], lr=[0.03, 0.01, 0.003])
def build(units, lr):
    import keras

    model = keras.Sequential([keras.Input((FEATURES,)), _counting_layer(),
                              keras.layers.Dense(units, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


SETTINGS = dict(epochs=3, steps_per_epoch=4, validation_steps=2, train=train, val=val, seed=0)


EVENTS: list[object] = []


@pytest.fixture(scope="module")
def halved():
    return build.search(strategy="halving", eta=3, verbose=EVENTS.append, **SETTINGS)


@pytest.fixture(scope="module")
def full():
    return build.search(**SETTINGS)


def test_halving_makes_one_trial_per_combination_and_the_winner_trains_fully(halved):
    assert [t.number for t in halved.trials] == list(range(1, 7))
    assert halved.best.epochs == 3 and halved.best.status is gs.TrialStatus.COMPLETE
    assert len(halved.best.history["val_loss"]) == 3


def test_halving_spends_fewer_epochs_and_prunes_the_rest(halved, full):
    assert sum(t.epochs for t in halved.trials) == 6 * 1 + 2 * 2 < sum(t.epochs for t in full.trials) == 18
    assert [t.status for t in halved.trials].count(gs.TrialStatus.PRUNED) == 4
    assert all(t.epochs == 1 for t in halved.pruned)
    assert halved.best_params in [t.params for t in full.ranked()[:3]]


def test_a_promoted_trial_continues_its_weights_and_optimizer_state(halved, full):
    # Continuing epoch 1 -> 3 must give exactly the curve of an uninterrupted 3-epoch run.
    for trial in halved.completed:
        uninterrupted = full.trials[trial.number - 1]
        assert trial.history.keys() == uninterrupted.history.keys()
        for key, curve in trial.history.items():
            assert curve == pytest.approx(uninterrupted.history[key], rel=1e-6)
        assert trial.best_epoch == uninterrupted.best_epoch and trial.score == pytest.approx(uninterrupted.score, rel=1e-6)


def test_the_step_counter_keeps_counting_across_rungs_and_the_seed_makes_it_repeatable(halved):
    import keras

    seen: list[tuple[int, float]] = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            counter = self.model.layers[0]
            seen.append((int(self.model.optimizer.iterations.numpy()), float(counter.steps.numpy())))

    result = build.search(strategy="halving", eta=3, callbacks=[Spy()], **SETTINGS)
    assert seen[:6] == [(0, 0.0)] * 6  # rung 1 starts every model from scratch
    assert seen[6:] == [(4, 4.0), (4, 4.0)]  # rung 2 resumes after 1 epoch of 4 steps
    assert result == attrs_without_durations(halved, result)  # the same search again


ARRAYS_X = np.random.default_rng(3).normal(size=(80, FEATURES)).astype("float32")  # 3 batches, the last short
ARRAYS = dict(train=lambda: (ARRAYS_X, np.tanh(ARRAYS_X @ WEIGHTS / 4)), val=None, epochs=3, seed=5)


@gs.grid(lr=[0.03, 0.01, 0.003])
def linear(lr):
    import keras

    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


def test_a_promoted_trial_on_shuffled_arrays_reads_the_batches_of_an_uninterrupted_run():
    # Each epoch reshuffles in-memory arrays; epoch k's order must not depend on where the
    # run started, or a promoted trial continues on other batches than the full run's.
    runs = {(strategy, fuse): linear.search(strategy=strategy, fuse=fuse, **ARRAYS)
            for strategy in ("grid", "halving") for fuse in (1, "auto")}
    full, halved = runs["grid", 1], runs["halving", 1]
    assert [t.epochs for t in halved.completed] == [3]
    for trial in halved.completed:
        assert dict(trial.history) == dict(full.trials[trial.number - 1].history)
    for strategy in ("grid", "halving"):  # fused groups read the same batches as fit alone
        alone, fused = runs[strategy, 1], runs[strategy, "auto"]
        assert any(t.fused_with for t in fused.trials)
        assert [dict(t.history) for t in fused.trials] == [dict(t.history) for t in alone.trials]


def attrs_without_durations(result, like):
    import attrs

    trials = [attrs.evolve(t, duration=o.duration) for t, o in zip(result.trials, like.trials)]
    return attrs.evolve(result, trials=trials, duration=like.duration)


def test_a_missing_checkpoint_means_retraining_from_scratch_to_the_same_curve(tmp_path, full):
    from gridspec.records import RunFolders, TrialSettings, TrialTask
    from gridspec.trial import TrialRunner

    settings = TrialSettings(objective="val_loss", direction="min", steps_per_epoch=4,
                             validation_steps=2, folders=RunFolders(checkpoint_dir=str(tmp_path / "gone")))
    runner = TrialRunner(build, train, val, settings)
    [trial] = runner.run_many([TrialTask(2, build.space[1], epochs=3, start_epoch=1)])
    assert trial.epochs == 3 and trial.history["val_loss"] == pytest.approx(full.trials[1].history["val_loss"], rel=1e-6)
    assert (tmp_path / "gone" / "trial-2-0.keras").exists()  # kept for a later rung


def test_rung_lines_say_what_was_promoted(halved):
    events = EVENTS
    from gridspec.progress import Note, TrialFinished, format_event

    notes = [e.text for e in events if isinstance(e, Note)]
    assert notes[0].startswith("Rung 1 (1 epoch): 6 trained; promoted 2 to 3 epochs (trials ")
    assert notes[0].endswith("pruned 4")
    assert notes[1].startswith("Rung 2 (3 epochs): 2 trained; done; best trial ")
    finished = [format_event(e) for e in events if isinstance(e, TrialFinished)]
    assert finished[0].startswith("Model 1 of 6... trial 1") and finished[6].startswith("Model 1 of 2...")


def _interrupter():
    import keras

    class InterruptRung2(keras.callbacks.Callback):
        """Ctrl-C as the first promoted trial starts, while ``armed``."""

        armed = True

        def on_train_begin(self, logs=None):
            if InterruptRung2.armed and self.params["epochs"] == 3:
                raise KeyboardInterrupt

    return InterruptRung2


def test_a_resumed_halving_search_does_not_redo_a_rung(tmp_path, halved):
    storage = str(tmp_path / "search.sqlite")
    interrupter = _interrupter()
    with pytest.raises(gs.SearchInterrupted):
        build.search(strategy="halving", storage=storage, callbacks=[interrupter()], **SETTINGS)
    assert (tmp_path / "search.sqlite.checkpoints").is_dir()  # kept to continue the trials
    interrupter.armed = False
    from gridspec.progress import TrialStarted

    events: list[object] = []
    resumed = build.search(strategy="halving", storage=storage, callbacks=[interrupter()],
                           verbose=events.append, **SETTINGS)
    started = [(e.number, e.start_epoch, e.epochs) for e in events if isinstance(e, TrialStarted)]
    assert started == [(t.number, 1, 3) for t in halved.completed]  # rung 1 came from the journal
    assert [(t.status, t.epochs) for t in resumed.trials] == [(t.status, t.epochs) for t in halved.trials]
    for a, b in zip(resumed.trials, halved.trials):
        assert a.score == pytest.approx(b.score, rel=1e-6)
    assert not (tmp_path / "search.sqlite.checkpoints").exists()  # a finished search cleans up


def test_halving_options_are_checked():
    with pytest.raises(gs.GridSpecError, match=r"eta must be an integer of at least 2, such as eta=3 \(got eta=1\)"):
        build.search(strategy="halving", eta=1, **SETTINGS)
    with pytest.raises(gs.GridSpecError, match=r"min_epochs must be a positive integer or None \(got min_epochs=0\)"):
        build.search(strategy="halving", min_epochs=0, **SETTINGS)


CLI_MODULE = """
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(16, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])

@gs.grid(units=[1, 2, 4], act=["tanh", "relu"])
def build(units, act):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation=act),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mean_squared_error")
    return model
"""


def test_the_cli_runs_halving_and_prints_each_rung(write_module):
    from conftest import run_cli

    path = write_module(CLI_MODULE)
    done = run_cli("run", f"{path}:build", "--epochs", "3", "--steps-per-epoch", "2",
                   "--strategy", "halving", "--eta", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("Model ") for line in lines) == 6 + 2
    assert any(line.startswith("Rung 1 (1 epoch): 6 trained; promoted 2 to 3 epochs") for line in lines)
    assert any(line.startswith("Rung 2 (3 epochs): 2 trained; done; best trial") for line in lines)
    assert any(line.startswith("Best params found: {") for line in lines)
    assert "Traceback" not in done.stderr
