"""fit_group trains models together exactly as ``model.fit`` trains each alone.

Every test trains the same tiny models twice — one at a time with Keras's own ``fit``, then
together with ``fit_group`` — and compares them member by member: every history key, every
epoch, and where callbacks are involved every hook call with its logs.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from conftest import ROOT, batches  # noqa: E402
from gridspec.training.fused import GroupStepError, fused_supported  # noqa: E402

# The same tests hold on JAX, bit for bit (tests/test_jax_fused.py runs them there)
EXACT = keras.backend.backend() == "jax"
TOL = {"rel": 0.0, "abs": 0.0} if EXACT else {"rel": 1e-6}
if EXACT:
    from gridspec.training.jax_group import fit_group, why_alone  # noqa: E402
else:
    from gridspec.training.fused import fit_group, why_alone  # noqa: E402

STEPS, VAL_STEPS = 3, 2


def endless(seed: int, count: int = 4) -> tf.data.Dataset:
    """A generator made endless and read through tf.data, as gridspec feeds ``fit``."""
    def gen():
        while True:
            yield from batches(seed, count)

    spec = (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None, 1), tf.float32))
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def finite(seed: int, count: int = 3, classes: int = 0) -> tf.data.Dataset:
    x, y = (np.concatenate(a) for a in zip(*batches(seed, count)))
    if classes:
        y = (np.abs(x[:, 0]) * 2).astype("int32") % classes
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def dense(lr: float = 0.01, act: str = "tanh", optimizer: str = "adam") -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation=act),
                              keras.layers.Dense(1)])
    opt = keras.optimizers.Adam(lr) if optimizer == "adam" else keras.optimizers.SGD(lr)
    model.compile(optimizer=opt, loss="mse", metrics=["mae"])
    return model


def built(make, seed: int = 0):
    keras.utils.set_random_seed(seed)
    return make()


def alone(makes, data, callbacks=None, **fit_args):
    """Each model trained by itself with Keras's fit, as gridspec's fuse=1 does."""
    histories = []
    for i, make in enumerate(makes):
        model = built(make)
        h = model.fit(data, callbacks=callbacks[i] if callbacks else None, verbose=0,
                      shuffle=False, **fit_args)
        histories.append(h.history)
        keras.backend.clear_session(free_memory=False)
    return histories


def together(makes, data, callbacks=None, **fit_args):
    models = [built(make) for make in makes]
    return fit_group(models, data, callbacks=callbacks, **fit_args)


def assert_same(expected: dict, got: dict) -> None:
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert len(got[key]) == len(values), key
        for a, b in zip(values, got[key]):
            assert (math.isnan(a) and math.isnan(b)) or b == pytest.approx(a, **TOL), key


def test_the_seed_grid_shape_trains_as_alone():
    makes = [lambda lr=lr, act=act: dense(lr, act)
             for lr in (0.01, 0.003) for act in ("relu", "tanh")] + [lambda: dense(0.01, "swish")]
    args = dict(epochs=2, steps_per_epoch=STEPS, validation_data=endless(2).take(VAL_STEPS))
    expected = alone(makes, endless(1), **args)
    outcomes = together(makes, endless(1), **args)
    assert len(outcomes) == len(makes)
    for want, got in zip(expected, outcomes):
        assert got.error is None
        assert set(got.history) == {"loss", "mae", "val_loss", "val_mae"}
        assert_same(want, got.history)


def test_validation_steps_on_an_endless_validation_set():
    args = dict(epochs=2, steps_per_epoch=STEPS, validation_data=endless(2),
                validation_steps=VAL_STEPS)
    makes = [lambda: dense(0.01), lambda: dense(0.02, "relu")]
    for want, got in zip(alone(makes, endless(1), **args), together(makes, endless(1), **args)):
        assert_same(want, got.history)


def test_validation_data_as_arrays_as_fit_takes_them():
    x, y = (np.concatenate(a) for a in zip(*batches(9, 2)))
    args = dict(epochs=2, steps_per_epoch=STEPS, validation_data=(x, y))
    makes = [lambda: dense(0.01), lambda: dense(0.02, "relu")]
    for want, got in zip(alone(makes, endless(1), **args), together(makes, endless(1), **args)):
        assert "val_mae" in got.history
        assert_same(want, got.history)


def test_data_that_runs_out_ends_the_epoch_as_with_fit():
    """steps_per_epoch past a finite dataset's end: fit warns, ends the epoch, starts over."""
    makes = [lambda: dense(0.01), lambda: dense(0.02, "relu")]
    args = dict(epochs=3, steps_per_epoch=STEPS + 2)
    for want, got in zip(alone(makes, finite(8), **args), together(makes, finite(8), **args)):
        assert_same(want, got.history)


def classifier(rate: float) -> keras.Model:
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(rate),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_dropout_batchnorm_and_accuracy_on_a_finite_dataset():
    """No steps_per_epoch: each epoch reads the finite dataset to its end, as fit does."""
    makes = [lambda: classifier(0.0), lambda: classifier(0.4), lambda: classifier(0.6)]
    args = dict(epochs=3, validation_data=finite(5, 2, classes=3))
    expected = alone(makes, finite(4, classes=3), **args)
    outcomes = together(makes, finite(4, classes=3), **args)
    for want, got in zip(expected, outcomes):
        assert set(got.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert_same(want, got.history)
    assert expected[0]["loss"] != expected[1]["loss"]  # dropout really drew


class OwnStep(keras.Model):
    """A subclassed model with its own train_step and a metric of its own."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(5, activation="relu")
        self.out = keras.layers.Dense(1)
        self.tracker = keras.metrics.Mean(name="abs_err")

    def call(self, x):
        return self.out(self.hidden(x))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            pred = self(x, training=True)
            loss = tf.reduce_mean(tf.square(pred - y)) + 0.1 * tf.reduce_mean(tf.abs(pred))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.tracker.update_state(tf.abs(pred - y))
        return {"custom_loss": loss, "abs_err": self.tracker.result()}

    @property
    def metrics(self):
        return [self.tracker]


def own_step() -> keras.Model:
    model = OwnStep()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")  # for its test_step
    return model


def regularised() -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, activation="tanh",
                                kernel_regularizer=keras.regularizers.L2(0.05))(inputs)
    hidden = keras.layers.ActivityRegularization(l1=0.01)(hidden)  # add_loss in its call
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer="rmsprop", loss="mse")
    return model


def test_a_subclassed_train_step_and_a_regulariser_train_as_alone():
    makes = [own_step, regularised, lambda: dense(0.01)]
    args = dict(epochs=2, steps_per_epoch=STEPS, validation_data=endless(2).take(VAL_STEPS))
    expected = alone(makes, endless(1), **args)
    outcomes = together(makes, endless(1), **args)
    assert "custom_loss" in outcomes[0].history and "abs_err" in outcomes[0].history
    for want, got in zip(expected, outcomes):
        assert_same(want, got.history)


def two_outputs(weights: list[float]) -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, activation="tanh")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1, name="a")(hidden),
                                 keras.layers.Dense(1, name="b")(hidden)])
    model.compile(optimizer="adam", loss=["mse", "mae"], loss_weights=weights)
    return model


def test_loss_weights_on_a_two_output_model():
    data = finite(6).map(lambda x, y: (x, (y, 2 * y)))
    makes = [lambda: two_outputs([1.0, 0.5]), lambda: two_outputs([0.2, 1.0])]
    for want, got in zip(alone(makes, data, epochs=2), together(makes, data, epochs=2)):
        assert {"a_loss", "b_loss"} <= set(got.history)
        assert_same(want, got.history)


class Recorder(keras.callbacks.Callback):
    """Records every hook fit calls, with its arguments and logs."""

    def __init__(self, stop_at: tuple[str, int] | None = None):
        super().__init__()
        self.calls: list[tuple] = []
        self.stop_at = stop_at

    def _record(self, hook, *args, logs=None):
        self.calls.append((hook, *args, tuple(sorted((logs or {}).items()))))
        if self.stop_at == (hook, args[0] if args else None):
            self.model.stop_training = True

    def on_train_begin(self, logs=None):
        self.calls.append(("params", tuple(sorted(self.params.items()))))
        self._record("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._record("on_train_end", logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._record("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._record("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._record("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._record("on_train_batch_end", batch, logs=logs)

    def on_test_begin(self, logs=None):
        self._record("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._record("on_test_end", logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._record("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._record("on_test_batch_end", batch, logs=logs)


def assert_same_calls(expected: list[tuple], got: list[tuple]) -> None:
    assert [c[:-1] for c in got] == [c[:-1] for c in expected]
    for want, have in zip(expected, got):
        assert dict(have[-1]) == pytest.approx(dict(want[-1]), **TOL)


def test_callbacks_see_what_fit_shows_them_and_stop_their_member_alone():
    makes = [lambda: dense(0.01), lambda: dense(0.02), lambda: dense(0.005, "relu")]
    stops = [None, ("on_epoch_end", 0), ("on_train_batch_end", 1)]  # after epoch 1; mid-epoch 2
    args = dict(epochs=3, steps_per_epoch=STEPS, validation_data=endless(2).take(VAL_STEPS))
    solo = [[Recorder(stop)] for stop in stops]
    expected = alone(makes, endless(1), callbacks=solo, **args)
    grouped = [[Recorder(stop)] for stop in stops]
    outcomes = together(makes, endless(1), callbacks=grouped, **args)
    assert [len(o.history["loss"]) for o in outcomes] == [3, 1, 1]
    for want, got in zip(expected, outcomes):
        assert_same(want, got.history)
    for want, got in zip(solo, grouped):
        assert_same_calls(want[0].calls, got[0].calls)
    batch_ends = [c for c in grouped[2][0].calls if c[0] == "on_train_batch_end"]
    assert [c[1] for c in batch_ends] == [0, 1]  # stopped mid-epoch, still validated
    assert any(c[0] == "on_test_end" for c in grouped[2][0].calls)


class LegacyBatches(keras.callbacks.Callback):
    """Only Keras 2's batch hooks, which Keras's ``on_train_batch_*`` defaults call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("on_batch_begin", batch, dict(logs or {})))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("on_batch_end", batch, dict(logs)))


class TestBatchEnds(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_test_batch_end(self, batch, logs=None):
        self.calls.append(("on_test_batch_end", batch, dict(logs)))


def test_each_member_gets_the_batch_hooks_its_callbacks_implement_as_with_fit():
    # members whose callbacks implement no batch hook skip them (Keras's no-ops); the others
    # must still get every call fit makes, the legacy on_batch_* ones included
    makes = [lambda: dense(0.01), lambda: dense(0.02), lambda: dense(0.005, "relu")]
    args = dict(epochs=2, steps_per_epoch=STEPS, validation_data=endless(2).take(VAL_STEPS))
    solo = [[LegacyBatches()], [TestBatchEnds()], [keras.callbacks.History()]]
    expected = alone(makes, endless(1), callbacks=solo, **args)
    grouped = [[LegacyBatches()], [TestBatchEnds()], [keras.callbacks.History()]]
    outcomes = together(makes, endless(1), callbacks=grouped, **args)
    for want, got in zip(expected, outcomes):
        assert_same(want, got.history)
    for i in (0, 1):
        assert len(grouped[i][0].calls) == len(solo[i][0].calls) > 0
        assert_same_calls(solo[i][0].calls, grouped[i][0].calls)
    assert [c[0] for c in grouped[0][0].calls[:2]] == ["on_batch_begin", "on_batch_end"]
    assert len(grouped[1][0].calls) == 2 * VAL_STEPS


class Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("callback broke")


def test_a_callback_that_raises_fails_its_member_alone():
    makes = [lambda: dense(0.01), lambda: dense(0.02)]
    args = dict(epochs=2, steps_per_epoch=STEPS)
    expected = alone(makes[1:], endless(1), **args)
    outcomes = together(makes, endless(1), callbacks=[[Boom()], []], **args)
    assert isinstance(outcomes[0].error, RuntimeError)
    assert str(outcomes[0].error) == "callback broke"
    assert outcomes[0].history == {}  # History comes after the user's callbacks, as in fit
    assert outcomes[1].error is None
    assert_same(expected[0], outcomes[1].history)


def test_a_member_whose_loss_goes_nan_trains_on_as_with_fit():
    makes = [lambda: dense(1e6, "relu", optimizer="sgd"), lambda: dense(0.01)]
    args = dict(epochs=2, steps_per_epoch=STEPS, validation_data=endless(2).take(VAL_STEPS))
    expected = alone(makes, endless(1), **args)
    assert math.isnan(expected[0]["loss"][-1]) or math.isinf(expected[0]["loss"][-1])
    outcomes = together(makes, endless(1), **args)
    for want, got in zip(expected, outcomes):
        assert got.error is None
        assert_same(want, got.history)


def test_initial_epoch_continues_restored_weights_and_optimizer_as_alone(tmp_path):
    """A model fitted 1 epoch, saved, rebuilt and restored, continues to 3 epochs."""
    makes = [lambda: dense(0.01), lambda: dense(0.03, "relu")]
    paths = []
    for i, make in enumerate(makes):
        model = built(make)
        model.fit(endless(1), epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
        paths.append(str(tmp_path / f"m{i}.keras"))
        model.save(paths[-1])

    def restored(i):
        model = built(makes[i])
        model.optimizer.build(model.trainable_variables)
        model.load_weights(paths[i])
        return model

    args = dict(epochs=3, initial_epoch=1, steps_per_epoch=STEPS,
                validation_data=endless(2).take(VAL_STEPS))
    expected = [restored(i).fit(endless(1).skip(STEPS), verbose=0, shuffle=False, **args).history
                for i in range(2)]
    outcomes = fit_group([restored(0), restored(1)], endless(1).skip(STEPS), **args)
    for want, got in zip(expected, outcomes):
        assert len(got.history["loss"]) == 2
        assert_same(want, got.history)


def test_fused_supported_is_tensorflow_only():
    assert fused_supported()
    code = "from gridspec.training.fused import fused_supported; print(fused_supported())"
    # Keras's numpy backend needs no extra package, unlike jax; fusion refuses both alike
    env = {**os.environ, "KERAS_BACKEND": "numpy", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_model_that_cannot_join_a_group_is_named():
    eager = dense()
    eager.compile(optimizer="adam", loss="mse", run_eagerly=True)
    assert why_alone(dense()) is None
    assert why_alone(eager) == "the model is compiled with run_eagerly=True"
    with pytest.raises(GroupStepError, match="model 1 cannot train in a group") as info:
        fit_group([dense(), eager], endless(1), epochs=1, steps_per_epoch=STEPS)
    assert info.value.member == 1


class Raises(keras.Model):
    def __init__(self, when: str):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.when = when

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        if self.when == "tracing":
            raise ValueError("no train step here")
        x, _ = data
        tf.debugging.assert_less(tf.reduce_max(x), -100.0, message="x is too large")
        return {}


def raises(when: str) -> keras.Model:
    model = Raises(when)
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_step_that_raises_while_traced_names_its_member():
    with pytest.raises(GroupStepError, match="model 1's train_step raised") as info:
        fit_group([dense(), raises("tracing"), dense()], endless(1), epochs=1,
                  steps_per_epoch=STEPS)
    assert info.value.member == 1
    assert isinstance(info.value.__cause__, ValueError)


def test_a_step_that_fails_while_running_raises_group_step_error():
    with pytest.raises(GroupStepError, match="the group's train_step failed") as info:
        fit_group([dense(), raises("running")], endless(1), epochs=1, steps_per_epoch=STEPS)
    assert info.value.member is None
    assert isinstance(info.value.__cause__, tf.errors.InvalidArgumentError)


def test_a_smaller_group_continues_the_same_models_in_memory():
    """Halving's rung after rung: the promoted models go on together from their weights."""
    makes = [lambda: dense(0.01), lambda: dense(0.03, "relu"), lambda: dense(0.02)]
    val = endless(2).take(VAL_STEPS)
    expected = []
    for make in makes[:2]:
        model = built(make)
        model.fit(endless(1), epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
        expected.append(model.fit(endless(1).skip(STEPS), epochs=3, initial_epoch=1,
                                  steps_per_epoch=STEPS, validation_data=val, verbose=0,
                                  shuffle=False).history)
    models = [built(make) for make in makes]
    fit_group(models, endless(1), epochs=1, steps_per_epoch=STEPS)
    outcomes = fit_group(models[:2], endless(1).skip(STEPS), epochs=3, initial_epoch=1,
                         steps_per_epoch=STEPS, validation_data=val)
    for want, got in zip(expected, outcomes):
        assert_same(want, got.history)


def test_group_size_cap_is_bounded_by_the_measured_cap_and_by_memory():
    from gridspec.training.grouping import (AUTO_GROUP_SIZE, free_memory_bytes, group_size_cap, group_size_for,
                                            state_bytes)

    model = dense()  # 4*6+6 + 6*1+1 = 37 float32 weights; Adam not built yet: 2 slots each
    assert state_bytes(model) == 37 * 4 * 3
    assert group_size_for("auto") == AUTO_GROUP_SIZE and group_size_for(20) == 20
    assert group_size_cap([model], AUTO_GROUP_SIZE, memory_bytes=10**9) == AUTO_GROUP_SIZE
    assert group_size_cap([model], 20, memory_bytes=10**9) == 20  # fuse=20 is the user's cap
    per_model = 37 * 4 * 4  # weights, two slots, gradients
    assert group_size_cap([model], 20, memory_bytes=per_model * 4 * 5) == 5  # a quarter of memory, for any fuse
    assert group_size_cap([model], AUTO_GROUP_SIZE, memory_bytes=1) == 1
    assert group_size_cap([model], 3, memory_bytes=None) == 3  # memory unknown: the cap alone
    assert 1 <= group_size_cap([model], AUTO_GROUP_SIZE, free_memory_bytes()) <= AUTO_GROUP_SIZE


def test_release_drops_the_kept_steps():
    from gridspec.training.fused import release

    models = [dense(), dense()]
    fit_group(models, endless(1), epochs=1, steps_per_epoch=STEPS)
    assert "_gridspec_group_functions" in vars(models[0])
    release(models)
    assert not any(k.startswith("_gridspec") for m in models for k in vars(m))
    assert fit_group(models, endless(1), epochs=2, initial_epoch=1,
                     steps_per_epoch=STEPS)[0].history["loss"]  # and trains on as before


def test_each_member_is_traced_once_where_fit_traces_twice():
    """fit creates optimizer and metric variables in its first trace, so tf.function traces
    its train step again; fit_group creates them first (docs/performance.md)."""
    traces = []

    class Counted(keras.Sequential):
        def train_step(self, data):
            traces.append(1)
            return super().train_step(data)

    def counted():
        model = Counted([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        return model

    built(counted).fit(finite(3), epochs=2, verbose=0)
    alone_traces, traces[:] = len(traces), []
    fit_group([built(counted)], finite(3), epochs=2)
    assert len(traces) == 1 < alone_traces


def test_early_stopping_and_terminate_on_nan_act_per_member_as_with_fit():
    """Keras's own stopping callbacks: the stopped member's final weights match fit's too."""
    makes = [lambda: dense(0.2, "relu"), lambda: dense(1e6, "relu", optimizer="sgd"),
             lambda: dense(0.01)]

    def callbacks():
        return [[keras.callbacks.EarlyStopping(monitor="val_loss", patience=0,
                                               restore_best_weights=True)],
                [keras.callbacks.TerminateOnNaN()], []]

    args = dict(epochs=4, steps_per_epoch=STEPS, validation_data=endless(2).take(VAL_STEPS))
    solo, expected = [], []
    for make, cbs in zip(makes, callbacks()):
        model = built(make)
        expected.append(model.fit(endless(1), callbacks=cbs, verbose=0, shuffle=False,
                                  **args).history)
        solo.append([w.numpy() for w in model.weights])
    models = [built(make) for make in makes]
    outcomes = fit_group(models, endless(1), callbacks=callbacks(), **args)
    for want, got in zip(expected, outcomes):
        assert_same(want, got.history)
    assert len(outcomes[0].history["loss"]) < 4  # EarlyStopping stopped it
    assert len(outcomes[1].history["loss"]) < 4  # TerminateOnNaN stopped it
    assert len(outcomes[2].history["loss"]) == 4
    for weights, model in zip(solo, models):
        for a, b in zip(weights, model.weights):
            np.testing.assert_allclose(b.numpy(), a, rtol=TOL["rel"])
