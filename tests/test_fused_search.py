"""Fused trials through ``search()`` (docs/search.md, "Fused trials"): every faster path equals ``fuse=1`` trial by trial.

``fuse=1`` is Keras's own ``fit``, one trial at a time: the oracle. Each test runs the same
search both ways and compares every trial's status, epochs, best epoch, score and every
history key at every epoch (float32 rounding only).
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import pytest

import gridspec as gs
from gridspec.journal import load

from conftest import batches, run_cli


# On JAX, on a CPU, a group's program computes each member exactly as fit does alone
EXACT = keras.backend.backend() == "jax"


def assert_same_trials(fused, alone, rel=1e-5):
    if EXACT:
        rel = 0.0
    assert [t.number for t in fused.trials] == [t.number for t in alone.trials]
    for f, a in zip(fused.trials, alone.trials):
        assert f.status is a.status, (f.number, f.error, a.error)
        assert (f.epochs, f.best_epoch) == (a.epochs, a.best_epoch), f.number
        assert set(f.history) == set(a.history), f.number
        for key in a.history:
            assert f.history[key] == pytest.approx(a.history[key], rel=rel, abs=0.0 if EXACT else 1e-7,
                                                   nan_ok=True), (f.number, key)
        if a.score is None:
            assert f.score is None
        else:
            assert f.score == pytest.approx(a.score, rel=rel, abs=0.0 if EXACT else 1e-12)
    assert fused.best_params == alone.best_params if alone.completed else True


def train():
    yield from batches(seed=1, count=3)


def val():
    yield from batches(seed=2, count=2)


SMALL = {"epochs": 2, "steps_per_epoch": 3, "validation_steps": 2, "train": train, "val": val}


@gs.grid(lr=[0.05, 0.01], act_in=["relu", "tanh"], act_out=["tanh", "sigmoid"])
def seed_like(lr, act_in, act_out):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation=act_in),
                              keras.layers.Dense(1, activation=act_out)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error", metrics=["mae"])
    return model


@pytest.fixture(scope="module")
def seed_grid(tmp_path_factory):
    """The seed grid searched fused and with ``fuse=1``, each saving its best model: the
    comparison, save_best and a resumed search all read these two searches."""
    folder = tmp_path_factory.mktemp("seed_grid")
    fused = seed_like.search(save_best=str(folder / "fused.keras"), **SMALL)
    alone = seed_like.search(fuse=1, save_best=str(folder / "alone.keras"), **SMALL)
    return fused, alone, folder


def test_the_seed_grid_fused_equals_fit_alone(seed_grid):
    fused, alone, _ = seed_grid
    assert_same_trials(fused, alone)
    assert all(t.fused_with == () for t in alone.trials)
    assert all(len(t.fused_with) == 7 for t in fused.trials)  # one group of 8


def test_fused_with_is_symmetric_and_bounded_by_fuse():
    result = seed_like.search(fuse=3, **SMALL)
    groups = {}
    for t in result.trials:
        assert t.number not in t.fused_with and len(t.fused_with) <= 2
        for other in t.fused_with:
            assert t.number in result.trials[other - 1].fused_with
        groups[frozenset((t.number, *t.fused_with))] = True
    assert sorted(len(g) for g in groups) == [2, 3, 3]
    assert sum(t.duration for t in result.trials) <= result.duration


def classes():
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = rng.normal(size=(16, 4)).astype("float32")
        yield x, (x[:, 0] > 0).astype("int32")


def classes_val():
    rng = np.random.default_rng(4)
    for _ in range(2):
        x = rng.normal(size=(16, 4)).astype("float32")
        yield x, (x[:, 0] > 0).astype("int32")


@gs.grid(dropout=[0.0, 0.4], lr=[0.05, 0.01])
def classifier(dropout, lr):
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"), keras.layers.Dropout(dropout),
        keras.layers.Dense(2, activation="softmax", kernel_regularizer=keras.regularizers.L2(0.01)),
    ])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_a_classifier_with_dropout_batchnorm_and_accuracy_fused_equals_alone():
    settings = {"epochs": 3, "steps_per_epoch": 4, "validation_steps": 2, "train": classes, "val": classes_val,
                "objective": "val_accuracy"}
    fused = classifier.search(**settings)
    alone = classifier.search(fuse=1, **settings)
    assert fused.direction == "max"
    assert_same_trials(fused, alone)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(fused.best.history)


class TwiceLoss(keras.Model):
    """A subclassed model with its own train_step: the loss it reports is doubled."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(units, activation="tanh")
        self.out = keras.layers.Dense(1)
        self.tracker = keras.metrics.Mean(name="twice")

    def call(self, x):
        return self.out(self.hidden(x))

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.tracker.update_state(2 * loss)
        return {"twice": self.tracker.result()}

    @property
    def metrics(self):
        return [self.tracker]


@gs.grid(units=[2, 4, 8])
def subclassed(units):
    model = TwiceLoss(units)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    model.build((None, 4))
    return model


def test_a_subclassed_model_with_its_own_train_step_fused_equals_alone():
    settings = {"epochs": 2, "steps_per_epoch": 3, "train": train, "val": None, "objective": "twice"}
    fused = subclassed.search(**settings)
    alone = subclassed.search(fuse=1, **settings)
    assert_same_trials(fused, alone)
    assert all(t.fused_with for t in fused.trials)


@gs.grid(lr=[0.01, 1e12, 0.02], broken=[False, True])
def fragile(lr, broken):
    if broken and lr == 0.02:
        raise RuntimeError("this combination can't be built")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


def test_a_member_that_cannot_be_built_and_one_that_diverges_fail_alone():
    fused = fragile.search(**SMALL)
    alone = fragile.search(fuse=1, **SMALL)
    assert_same_trials(fused, alone)
    by_number = {t.number: t for t in fused.trials}
    assert by_number[6].status is gs.TrialStatus.FAILED and "can't be built" in by_number[6].error
    assert by_number[6].fused_with == ()  # it never entered the group
    assert by_number[3].status is gs.TrialStatus.FAILED and "NonFiniteObjective" in by_number[3].error
    assert by_number[3].fused_with  # it trained in the group, and failed exactly as alone
    assert by_number[1].status is gs.TrialStatus.COMPLETE


@gs.grid(lr=[0.05, 0.01], act_in=["relu", "tanh"])
def four(lr, act_in):
    return seed_like.fn(lr, act_in, "tanh")


class StopAfterFirstEpochFor(keras.callbacks.Callback):
    """Stops the trials whose first Dense layer has the given activation, after epoch 1."""

    def __init__(self, activation):
        super().__init__()
        self.activation = activation
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(epoch)
        if self.model.layers[0].activation.__name__ == self.activation:
            self.model.stop_training = True


def test_a_callback_that_stops_some_members_stops_them_alone():
    settings = {**SMALL, "epochs": 3, "callbacks": [StopAfterFirstEpochFor("relu")]}
    fused = four.search(**settings)
    alone = four.search(fuse=1, **settings)
    assert_same_trials(fused, alone)
    assert {t.params["act_in"]: t.epochs for t in fused.trials} == {"relu": 1, "tanh": 3}


def test_early_stopping_fused_equals_alone():
    settings = {**SMALL, "epochs": 4, "callbacks": [keras.callbacks.EarlyStopping(patience=0, min_delta=0.1)]}
    fused = four.search(**settings)
    assert_same_trials(fused, four.search(fuse=1, **settings))
    assert len({t.epochs for t in fused.trials}) > 1 and min(t.epochs for t in fused.trials) < 4  # each stops on its own




class RefusesToTrain(keras.Model):
    """Builds and predicts, but raises when called in training: its step can't be traced."""

    def __init__(self, refuse, **kwargs):
        super().__init__(**kwargs)
        self.refuse = refuse
        self.hidden = keras.layers.Dense(4, activation="tanh")
        self.out = keras.layers.Dense(1)

    def call(self, x, training=False):
        if training and self.refuse:
            raise ValueError("this model refuses to train")
        return self.out(self.hidden(x))


@gs.grid(lr=[0.05, 0.01], refuse=[False, True])
def refusing(lr, refuse):
    model = RefusesToTrain(refuse)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    model(np.zeros((1, 4), "float32"))
    return model


def test_a_group_whose_step_fails_to_trace_trains_its_members_alone():
    notes = []
    fused = refusing.search(verbose=notes.append, **SMALL)
    alone = refusing.search(fuse=1, **SMALL)
    assert_same_trials(fused, alone)
    assert [t.status for t in fused.trials] == [gs.TrialStatus.COMPLETE, gs.TrialStatus.FAILED] * 2
    assert "refuses to train" in fused.trials[1].error
    said = [e.text for e in notes if type(e).__name__ == "Note" and "train alone" in e.text]
    assert said and "each trial's own error follows" in said[0]


@pytest.fixture
def checkpoint_writes(monkeypatch):
    """Every checkpoint file a search writes, by name."""
    from gridspec.training import continuation

    written: list[str] = []
    keep = continuation.keep

    def counting(model, path):
        written.append(os.path.basename(path))
        keep(model, path)

    monkeypatch.setattr(continuation, "keep", counting)
    return written


@gs.grid(lr=[0.05, 0.03, 0.02, 0.01, 0.005], act_in=["relu", "tanh"])
def ten(lr, act_in):
    return seed_like.fn(lr, act_in, "tanh")


def test_halving_fused_equals_alone_and_writes_a_checkpoint_only_when_a_model_leaves_memory(
        checkpoint_writes, tmp_path):
    settings = {**SMALL, "epochs": 4, "strategy": "halving", "eta": 2}
    fused = seed_like.search(**settings)  # 8 models: every promoted one is still in memory
    assert checkpoint_writes == []
    alone = seed_like.search(fuse=1, **settings)
    assert len(checkpoint_writes) == 8 + 4 + 2  # Keras's fit: one file per trial per rung
    assert_same_trials(fused, alone)
    assert len(fused.pruned) == len(alone.pruned) > 0
    # fuse=2 keeps at most 8 models: the oldest leave memory, written as they go, and the
    # promoted ones among them continue from their files — as the default, which keeps all
    # ten in memory (and equals fuse=1, above)
    checkpoint_writes.clear()
    fused = ten.search(fuse=2, **settings)
    assert {"trial-1-0.keras", "trial-2-0.keras"} <= set(checkpoint_writes)
    assert len(checkpoint_writes) < 10 + 5 + 2  # fewer than one per trial per rung
    assert_same_trials(fused, ten.search(**settings))
    # with a journal, a resumed search may need any of them: every one is written at once
    checkpoint_writes.clear()
    seed_like.search(storage=str(tmp_path / "j.db"), **settings)
    assert len(checkpoint_writes) == 8 + 4 + 2


class FailsAfter(keras.Model):
    """Trains normally for ``steps`` steps; with ``fail``, its step then fails at run time."""

    def __init__(self, fail, steps, **kwargs):
        super().__init__(**kwargs)
        self.fail, self.steps = fail, steps
        self.hidden = keras.layers.Dense(4, activation="tanh")
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "fail": self.fail, "steps": self.steps}

    def train_step(self, data):
        import tensorflow as tf

        if self.fail:
            tf.debugging.assert_less(self.optimizer.iterations, tf.constant(self.steps, "int64"),
                                     message="past the first rung")
        return super().train_step(data)


@gs.grid(lr=[0.05, 0.0001], fail=[False, True])
def fails_later(lr, fail):
    model = FailsAfter(fail, steps=4)  # rung 1 is 3 steps: the 2nd step of rung 2 fails
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    model(np.zeros((1, 4), "float32"))  # its variables exist, so a checkpoint can be restored
    return model


def test_a_promoted_group_whose_step_fails_continues_alone_from_where_it_was():
    # rung 1 (one epoch of 3 steps): the four train together. Rung 2: the two lr=0.05 models
    # (equal but for ``fail``) continue together from memory, with no file written; the
    # group's second step fails, after one step moved both, so each continues alone from its
    # state before the group (``continuation.rewind``), as ``fuse=1`` does from its file
    settings = {**SMALL, "epochs": 2, "strategy": "halving", "eta": 2, "val": None, "objective": "loss"}
    fused = fails_later.search(**settings)
    alone = fails_later.search(fuse=1, **settings)
    assert_same_trials(fused, alone)
    by_number = {t.number: t for t in fused.trials}
    assert by_number[1].status is gs.TrialStatus.COMPLETE and by_number[1].epochs == 2
    assert by_number[2].status is gs.TrialStatus.FAILED and "past the first rung" in by_number[2].error


def test_repeats_fused_equals_alone():
    settings = {**SMALL, "repeats": 2}
    assert_same_trials(four.search(**settings), four.search(fuse=1, **settings))


def test_save_best_with_fusion_saves_the_same_model(seed_grid):
    fused, alone, folder = seed_grid
    assert fused.best.number == alone.best.number
    a = keras.saving.load_model(folder / "fused.keras")
    b = keras.saving.load_model(folder / "alone.keras")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-7)


def test_a_resumed_fused_search_trains_nothing_twice(tmp_path, seed_grid):
    path = str(tmp_path / "j.db")
    first = seed_like.search(storage=path, max_trials=4, **SMALL)
    assert len(first.trials) == 4
    seen = []
    second = seed_like.search(storage=path, verbose=seen.append, **SMALL)
    started = [e.number for e in seen if type(e).__name__ == "TrialStarted"]
    assert started == [5, 6, 7, 8]
    assert_same_trials(second, seed_grid[1])  # the whole grid with fuse=1
    assert len(load(path).trials) == 8


def test_bad_fuse_values_are_refused_in_python_and_the_cli():
    for bad in (0, -1, "all", 2.5, True):
        with pytest.raises(gs.GridSpecError, match="fuse must be 'auto'"):
            seed_like.search(fuse=bad, **SMALL)
    proc = run_cli("run", "examples/seed_grid.py:build", "--fuse", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: --fuse must be auto (gridspec picks the group size), 1 (every trial alone" in proc.stderr
    assert "(got --fuse 0)" in proc.stderr  # one validator, the field's, in the command line's spelling


class Scaled(keras.layers.Layer):
    """A custom layer whose config can't be written: Keras can't save a model holding it."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        raise NotImplementedError("Scaled has no config")


@gs.grid(factor=[1.0, 2.0])
def unsaveable(factor):
    model = keras.Sequential([keras.Input((4,)), Scaled(factor), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_model_that_cannot_be_saved_fails_save_best_not_the_search(tmp_path):
    notes = []
    result = unsaveable.search(save_best=str(tmp_path / "best.keras"), verbose=notes.append, **SMALL)
    assert [t.status for t in result.trials] == [gs.TrialStatus.COMPLETE] * 2
    said = [e.text for e in notes if type(e).__name__ == "Note" and "save_best could not save" in e.text]
    assert len(said) == 1 and "the search goes on without saving models" in said[0]
    assert not (tmp_path / "best.keras").exists()
