"""Searching with real (tiny) Keras models: fairness, data forms, failures, the result."""

from __future__ import annotations

import ast
import json
import math

import attrs
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import gridspec as gs

from conftest import batches

FEATURES = 4


class Probe(keras.layers.Layer):
    """Passes inputs through, summing what it sees in training and in validation."""

    def build(self, shape):
        self.train_sum = self.add_weight(shape=(), initializer="zeros", trainable=False, name="train_sum")
        self.train_batches = self.add_weight(shape=(), initializer="zeros", trainable=False, name="train_batches")
        self.val_sum = self.add_weight(shape=(), initializer="zeros", trainable=False, name="val_sum")

    def call(self, x, training=False):
        if training:
            self.train_sum.assign_add(ops.sum(x))
            self.train_batches.assign_add(1.0)
        else:
            self.val_sum.assign_add(ops.sum(x))
        return x


class Recorder(keras.callbacks.Callback):
    """Reads the probe after every epoch of every trial."""

    def __init__(self):
        super().__init__()
        self.trials = []

    def on_train_begin(self, logs=None):
        self.trials.append([])

    def on_epoch_end(self, epoch, logs=None):
        probe = self.model.get_layer("probe")
        self.trials[-1].append(
            (float(probe.train_sum.numpy()), float(probe.train_batches.numpy()), float(probe.val_sum.numpy()))
        )


def dense_model(lr=0.01, act="tanh", units=4, probe=True, loss="mse"):
    layers = [keras.Input((FEATURES,))]
    if probe:
        layers.append(Probe(name="probe"))
    layers += [keras.layers.Dense(units, activation=act), keras.layers.Dense(1)]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    return model


def train3():
    """A finite generator of 3 batches: gridspec must make it endless."""
    train3.calls += 1
    yield from batches(seed=1, count=3)


train3.calls = 0


def val2():
    yield from batches(seed=2, count=5)


@gs.grid(lr=[0.01, 0.001], act=["tanh", "relu"])
def probed(lr, act):
    return dense_model(lr, act)


def test_every_trial_sees_the_same_batches_in_the_same_order():
    recorder = Recorder()
    train3.calls = 0
    result = probed.search(epochs=3, steps_per_epoch=4, validation_steps=2, train=train3, val=val2,
                           callbacks=[recorder], cache_data=False, fuse=1)
    # fuse=1: the recorder is one object that every trial writes to in turn; fused trials
    # each get their own copy of the callbacks (docs/search.md), tested in test_fused_search.py
    assert len(result.trials) == 4 and len(recorder.trials) == 4
    first = recorder.trials[0]
    for other in recorder.trials[1:]:
        assert np.allclose(other, first, rtol=1e-6)
    # exactly epochs x steps_per_epoch training batches: 12 from a 3-batch generator
    assert first[-1][1] == 12
    assert train3.calls >= 4  # the finite generator was called again each time it ran out
    # validation sees the same first 2 batches at every epoch
    per_epoch_val = [first[0][2]] + [b[2] - a[2] for a, b in zip(first, first[1:])]
    assert per_epoch_val == pytest.approx([per_epoch_val[0]] * 3)
    expected = sum(float(x.sum()) for x, _ in batches(seed=2, count=2))
    assert per_epoch_val[0] == pytest.approx(expected, rel=1e-4)


def test_materialised_batches_equal_streamed_batches():
    streamed, cached = Recorder(), Recorder()
    a = probed.search(epochs=2, steps_per_epoch=4, validation_steps=2, train=train3, val=val2,
                      callbacks=[streamed], cache_data=False, max_trials=2)
    b = probed.search(epochs=2, steps_per_epoch=4, validation_steps=2, train=train3, val=val2,
                      callbacks=[cached], max_trials=2)
    assert np.allclose(streamed.trials, cached.trials, rtol=1e-6)
    assert [t.score for t in a.trials] == pytest.approx([t.score for t in b.trials], rel=1e-6)


def test_result_is_frozen_typed_and_complete():
    result = probed.search(epochs=2, steps_per_epoch=3, validation_steps=2, train=train3, val=val2)
    assert isinstance(result, gs.SearchResult)
    assert result.objective == "val_loss" and result.direction == "min"
    assert [t.number for t in result.trials] == [1, 2, 3, 4]
    assert [t.params for t in result.trials] == list(probed.space)
    for t in result.trials:
        assert t.status is gs.TrialStatus.COMPLETE
        assert t.epochs == 2 and set(t.history) == {"loss", "val_loss"}
        assert t.score == min(t.history["val_loss"])
        assert t.history["val_loss"][t.best_epoch - 1] == t.score
        assert t.duration > 0 and t.error is None
    assert result.best.score == min(t.score for t in result.trials)
    assert result.best_params == result.best.params and result.best_score == result.best.score
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.trials = ()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.trials[0].score = 0.0
    assert "Best params found" in str(result) and "rank" in str(result)


def test_same_seed_same_scores_other_seed_other_scores():
    settings = dict(epochs=2, steps_per_epoch=3, validation_steps=2, train=train3, val=val2, max_trials=2)
    a = probed.search(seed=1, **settings)
    b = probed.search(seed=1, **settings)
    c = probed.search(seed=2, **settings)
    assert [t.score for t in a.trials] == [t.score for t in b.trials]
    assert [t.score for t in a.trials] != [t.score for t in c.trials]


def test_exports(tmp_path):
    result = probed.search(epochs=1, steps_per_epoch=2, validation_steps=1, train=train3, val=val2)
    records = result.to_records()
    assert len(records) == 4
    row = records[0]
    for key in ("number", "status", "params", "param_lr", "param_act", "score", "rank", "best_epoch",
                "epochs", "fit_time", "loss", "val_loss", "error"):
        assert key in row
    assert sorted(r["rank"] for r in records) == [1, 2, 3, 4]
    assert next(r for r in records if r["rank"] == 1)["params"] == result.best_params
    data = json.loads(result.to_json(str(tmp_path / "r.json")))
    assert data["best_params"] == result.best_params and len(data["trials"]) == 4
    assert json.loads((tmp_path / "r.json").read_text()) == data
    text = result.to_csv(str(tmp_path / "r.csv"))
    assert text.splitlines()[0].startswith("number,status,param_lr,param_act,score,rank")
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 5
    frame = result.to_dataframe()
    assert list(frame.index) == [1, 2, 3, 4] and "param_lr" in frame.columns


def test_failed_and_nan_trials_are_recorded_and_search_goes_on():
    def nan_loss(y_true, y_pred):
        return ops.mean(y_pred) * float("nan")

    @gs.grid(act=["tanh", "no_such_activation"], loss=["mse", nan_loss])
    def fragile(act, loss):
        return dense_model(act=act, loss=loss, probe=False)

    result = fragile.search(epochs=1, steps_per_epoch=2, validation_steps=1, train=train3, val=val2)
    statuses = [t.status for t in result.trials]
    assert statuses == [gs.TrialStatus.COMPLETE, gs.TrialStatus.FAILED, gs.TrialStatus.FAILED, gs.TrialStatus.FAILED]
    nan_trial = result.trials[1]
    assert nan_trial.error.startswith("NonFiniteObjective: objective val_loss was nan at epoch 1")
    assert "no_such_activation" in result.trials[2].error and result.trials[2].error.startswith("ValueError")
    assert "Traceback" in result.trials[2].traceback
    assert result.best.number == 1 and len(result.failed) == 3


def test_all_trials_failing_raises_search_error_with_the_first_error():
    @gs.grid(act=["bad_one", "bad_two"])
    def broken(act):
        return dense_model(act=act)

    with pytest.raises(gs.SearchError) as info:
        broken.search(steps_per_epoch=2, train=train3, val=None)
    assert "all 2 trials failed" in str(info.value)
    assert "bad_one" in info.value.first_error


def test_dict_inputs_and_sample_weights():
    def multi():
        rng = np.random.default_rng(3)
        for _ in range(4):
            a = rng.normal(size=(8, 3)).astype("float32")
            b = rng.normal(size=(8, 2)).astype("float32")
            yield {"a": a, "b": b}, (a[:, :1] + b[:, :1]), np.ones(8, "float32")

    @gs.grid(units=[2, 4])
    def two_inputs(units):
        a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
        h = keras.layers.Dense(units)(keras.layers.Concatenate()([a, b]))
        model = keras.Model({"a": a, "b": b}, keras.layers.Dense(1)(h))
        model.compile(optimizer="adam", loss="mse")
        return model

    result = two_inputs.search(epochs=1, steps_per_epoch=3, train=multi, val=None)
    assert result.objective == "loss" and len(result.completed) == 2


def test_tf_data_and_in_memory_sources():
    x = np.random.default_rng(0).normal(size=(40, FEATURES)).astype("float32")
    y = np.tanh(x[:, :1])

    def arrays():
        return x, y

    def finite_dataset():
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(10)

    @gs.grid(units=[2, 3])
    def small(units):
        return dense_model(units=units, probe=False)

    by_arrays = small.search(epochs=2, train=arrays, val=arrays)  # no steps needed
    assert len(by_arrays.completed) == 2
    by_dataset = small.search(epochs=2, train=finite_dataset, val=finite_dataset)
    assert len(by_dataset.completed) == 2
    repeated = small.search(epochs=2, steps_per_epoch=7, train=finite_dataset, val=None)  # 4 batches, repeated
    assert len(repeated.completed) == 2


def test_an_axis_used_only_by_a_data_factory():
    seen = []

    def sized(batch_size):
        seen.append(batch_size)
        rng = np.random.default_rng(0)
        for _ in range(3):
            x = rng.normal(size=(batch_size, FEATURES)).astype("float32")
            yield x, x[:, :1]

    @gs.grid(batch_size=[4, 16], units=[2])
    def model(units):
        return dense_model(units=units, probe=False)

    result = model.search(epochs=1, steps_per_epoch=2, train=sized, val=None)
    assert [t.params["batch_size"] for t in result.trials] == [4, 16]
    assert set(seen) == {4, 16}
    assert result.trials[0].score != result.trials[1].score


def test_error_inside_tf_data_becomes_gridspec_error_naming_the_factory():
    def flaky(batch_size):  # parameter-dependent data is streamed through tf.data
        yield from batches(seed=0, count=2, size=batch_size)
        raise OSError("network share went away")

    @gs.grid(batch_size=[8])
    def model():
        return dense_model(probe=False)

    with pytest.raises(gs.DataError) as info:
        model.search(epochs=1, steps_per_epoch=5, train=flaky, val=None)
    assert str(info.value) == (
        "data factory 'flaky' (train_data) raised OSError at batch 2: network share went away"
    )
    assert isinstance(info.value.__cause__, OSError)


def test_random_strategy_max_trials_and_repeats():
    @gs.grid(lr=[0.01, 0.005, 0.001], act=["tanh", "relu"])
    def six(lr, act):
        return dense_model(lr, act, probe=False)

    result = six.search(strategy="random", max_trials=3, seed=5, steps_per_epoch=2, train=train3, val=None)
    numbers = [t.number for t in result.trials]
    assert len(numbers) == 3 and numbers == sorted(numbers)
    assert numbers == [t.number for t in six.search(strategy="random", max_trials=3, seed=5,
                                                     steps_per_epoch=2, train=train3, val=None).trials]
    for t in result.trials:
        assert t.params == six.space[t.number - 1]
    capped = six.search(max_trials=2, steps_per_epoch=2, train=train3, val=None)
    assert [t.number for t in capped.trials] == [1, 2]
    repeated = six.search(max_trials=1, repeats=2, epochs=2, steps_per_epoch=2, train=train3, val=None)
    once = [six.search(max_trials=1, seed=s, epochs=2, steps_per_epoch=2, train=train3, val=None) for s in (0, 1)]
    mean = [(a + b) / 2 for a, b in zip(once[0].trials[0].history["loss"], once[1].trials[0].history["loss"])]
    assert repeated.trials[0].history["loss"] == pytest.approx(mean, rel=1e-5)


def test_objective_direction_and_callbacks():
    @gs.grid(units=[2, 8])
    def classifier(units):
        model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(units, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return model

    def labelled():
        rng = np.random.default_rng(0)
        for _ in range(3):
            x = rng.normal(size=(16, FEATURES)).astype("float32")
            yield x, (x[:, :1] > 0).astype("float32")

    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    result = classifier.search(epochs=5, steps_per_epoch=2, validation_steps=2, train=labelled, val=labelled,
                               objective="val_accuracy", callbacks=[stop])
    assert result.direction == "max"
    assert result.best_score == max(t.score for t in result.trials)
    assert all(t.epochs < 5 for t in result.trials)  # EarlyStopping ran inside every trial


def test_best_params_repr_reads_back():
    @gs.grid(lr=np.array([0.01, 0.001]), units=np.arange(2, 4))
    def numpy_axes(lr, units):
        return dense_model(lr, units=int(units), probe=False)

    result = numpy_axes.search(steps_per_epoch=2, train=train3, val=None)
    assert ast.literal_eval(repr(result.best_params)) == result.best_params
    assert all(type(v) in (int, float) for v in result.best_params.values())
    assert not math.isnan(result.best_score)


def test_batch_size_axis_batches_in_memory_arrays():
    x = np.random.default_rng(0).normal(size=(64, FEATURES)).astype("float32")

    def arrays():
        return x, x[:, :1]

    @gs.grid(batch_size=[8, 32])
    def model():
        return dense_model(probe=False)

    recorder = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            recorder.append(self.params["steps"])

    result = model.search(train=arrays, val=None, callbacks=[Steps()])
    assert len(result.completed) == 2
    assert recorder == [8, 2]  # 64 samples in batches of 8, then of 32
