"""What only the JAX group has, checked under ``KERAS_BACKEND=jax`` (tests/test_jax_group.py
runs this module there, in one process with tests/jax_stack_checks.py)."""

from __future__ import annotations

import os

import jax
import keras
import numpy as np
import pytest

from conftest import batches
from gridspec.training import JAX_AUTO_GROUP_SIZE, Fit, planned_group_size
from gridspec.training import jax_group
from gridspec.training.fused import GroupStepError
from gridspec.training.jax_group import fit_group, why_alone

assert keras.backend.backend() == "jax"
STEPS = 3


def dense(lr: float = 0.01, act: str = "tanh") -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation=act), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def built(make, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return make()


class Weights(keras.callbacks.Callback):
    """Reads the weights after every step, as a checkpointing callback does mid-epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[np.ndarray]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append([w.numpy() for w in self.model.weights])


def test_a_callback_reading_weights_mid_epoch_sees_fits_and_training_goes_on_from_them():
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*batches(1, 4)))).batch(8)
    makes = [lambda: dense(0.01), lambda: dense(0.05, "relu")]
    solo = [Weights(), Weights()]
    expected = [built(make).fit(data, epochs=2, callbacks=[cb], verbose=0, shuffle=False).history
                for make, cb in zip(makes, solo)]
    grouped = [Weights(), Weights()]
    outcomes = fit_group([built(m) for m in makes], data, epochs=2, callbacks=[[cb] for cb in grouped])
    for want, got in zip(expected, outcomes):
        assert got.history == want
    for want, got in zip(solo, grouped):
        assert len(got.seen) == len(want.seen) == 8
        for a, b in zip(want.seen, got.seen):
            for wa, wb in zip(a, b):
                np.testing.assert_array_equal(wa, wb)


def test_numpy_batches_train_as_the_same_batches_through_tf_data():
    import tensorflow as tf

    listed = list(batches(1, 3))
    data = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*listed))).batch(8)
    makes = [lambda: dense(0.01), lambda: dense(0.05, "relu")]
    val = list(batches(2, 2))
    val_data = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*val))).batch(8)
    via_tf = fit_group([built(m) for m in makes], data, epochs=2, validation_data=val_data)
    as_list = fit_group([built(m) for m in makes], listed, epochs=2, validation_data=val)
    endless = fit_group([built(m) for m in makes], (b for _ in range(2) for b in listed), epochs=2,
                        steps_per_epoch=3, validation_data=val)
    for a, b, c in zip(via_tf, as_list, endless):
        assert a.history == b.history == c.history
        assert len(a.history["val_loss"]) == 2


def test_batches_in_memory_go_to_the_device_once_for_the_whole_group_and_every_epoch(monkeypatch):
    from_host = []
    put = jax.device_put

    def counting(x, *args, **kwargs):
        from_host.extend(leaf for leaf in jax.tree_util.tree_leaves(x) if isinstance(leaf, np.ndarray))
        return put(x, *args, **kwargs)

    monkeypatch.setattr(jax, "device_put", counting)
    fit_group([built(dense) for _ in range(4)], list(batches(1, 3)), epochs=3, validation_data=list(batches(2, 2)))
    assert len(from_host) == 2 * (3 + 2)  # x and y of 3 training and 2 validation batches, once
    from_host.clear()
    fit_group([built(dense) for _ in range(4)], (b for b in batches(1, 6)), epochs=2, steps_per_epoch=3)
    assert len(from_host) == 2 * 6  # a stream: each batch once for the group, not once a member


def test_a_model_that_cannot_join_and_a_step_that_fails_to_trace_are_named():
    eager = dense()
    eager.compile(optimizer="adam", loss="mse", run_eagerly=True)
    assert why_alone(dense()) is None
    assert why_alone(eager) == "the model is compiled to run eagerly (run_eagerly=True or jit_compile=False)"
    with pytest.raises(GroupStepError, match="model 1 cannot train in a group"):
        fit_group([dense(), eager], list(batches(1, 3)), epochs=1)

    class Raises(keras.Sequential):
        def train_step(self, state, data):
            raise ValueError("no train step here")

    raising = Raises([keras.Input((4,)), keras.layers.Dense(1)])
    raising.compile(optimizer="adam", loss="mse")
    with pytest.raises(GroupStepError, match="model 1's train_step raised") as info:
        fit_group([dense(), raising, dense()], list(batches(1, 3)), epochs=1)
    assert info.value.member == 1 and isinstance(info.value.__cause__, ValueError)


def test_the_planned_group_size_is_the_trainers(monkeypatch):
    from gridspec.training.fused_trainer import FusedTrainer

    class Context:
        settings = type("S", (), {"fuse": "auto"})()

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert planned_group_size("auto") == FusedTrainer(Context()).group_size == JAX_AUTO_GROUP_SIZE
    assert planned_group_size(5) == 5 and planned_group_size(1) == 1
    assert Fit is not None and jax_group is not None and os.environ["KERAS_BACKEND"] == "jax"


def test_a_jax_group_is_bounded_by_memory_with_each_members_activations():
    from gridspec.training.grouping import state_bytes

    model = built(dense)  # 37 weights; activations per example: 6 + 1 (+ the input layer's 4)
    per_model = 2 * (state_bytes(model) + 37 * 4) + jax_group.activation_bytes(model, 32)
    assert jax_group.activation_bytes(model, 32) >= 32 * (6 + 1) * 4
    assert jax_group.group_size_cap([model], 48, 32, memory_bytes=10**9) == 48
    assert jax_group.group_size_cap([model], 48, 32, memory_bytes=per_model * 4 * 5) == 5
    assert jax_group.group_size_cap([model], 48, 32, memory_bytes=1) == 1
    assert 1 <= jax_group.group_size_cap([model], 48) <= 48


def test_a_first_ctrl_c_stops_the_jax_group_at_the_next_epoch_end(monkeypatch):
    from gridspec import interrupt

    class AskToStop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            monkeypatch.setattr(interrupt, "_active", type("Request", (), {"requested": True})())

    ended = Weights()
    models = [built(dense), built(dense)]
    with pytest.raises(interrupt.StopAtEpochEnd):
        fit_group(models, list(batches(1, 3)), epochs=3, callbacks=[[AskToStop()], [ended]])
    assert len(ended.seen) == 3  # one epoch of 3 steps, then the stop
    assert all(w is not None for m in models for w in m.get_weights())  # the state is back in the models


def test_the_group_programs_compile_ahead_on_their_own_threads_and_are_the_ones_called():
    import threading

    import tensorflow as tf
    from jax import monitoring

    def dataset(seed: int, count: int, size: int) -> tf.data.Dataset:
        listed = list(batches(seed, count, size=size))
        return tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*listed))).batch(size)

    compiled: list[str] = []  # the thread each group program compiled on

    def listener(event: str, duration: float, **kwargs) -> None:
        if event.endswith("backend_compile_duration") and kwargs.get("fun_name") == "jit(group_step)":
            compiled.append(threading.current_thread().name)

    makes = [lambda: dense(0.01), lambda: dense(0.05, "relu"), lambda: dense(0.02)]
    monitoring.register_event_duration_secs_listener(listener)
    try:
        for val_size in (8, 5):  # validation batches like the training ones, then of another size
            compiled.clear()
            train, val = dataset(1, 4, 8), dataset(2, 2, val_size)
            expected = [built(make).fit(train, epochs=2, validation_data=val, verbose=0, shuffle=False).history
                        for make in makes]
            compiled.clear()
            outcomes = fit_group([built(m) for m in makes], train, epochs=2, validation_data=val)
            assert [o.history for o in outcomes] == expected
            if val_size == 8:  # both programs compiled ahead, neither again when called
                assert compiled == ["gridspec-xla-compile"] * 2
            else:  # the evaluation program compiled ahead for batches of 8 is not used: the call compiles
                assert sorted(compiled) == ["MainThread", "gridspec-xla-compile", "gridspec-xla-compile"]
    finally:
        monitoring.unregister_event_duration_listener(listener)
