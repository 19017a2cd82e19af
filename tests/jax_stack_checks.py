"""Stacked members on JAX, forced on this CPU (``GRIDSPEC_STACK=1``) and checked against ``fit``.

tests/test_jax_group.py runs this module under ``KERAS_BACKEND=jax``. Stacked arithmetic is
batched, so it rounds differently from each member's own program: histories are compared to
``fit``'s within float32 rounding of a few steps, and rankings must be the same.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import gridspec as gs
from conftest import batches
from jax_checks import Weights  # reads the weights after every step
from gridspec.training import jax_stack
from gridspec.training.jax_group import fit_group

assert keras.backend.backend() == "jax"
RTOL = 1e-4


@pytest.fixture(autouse=True)
def stacking(monkeypatch):
    monkeypatch.setenv(jax_stack.STACK_ENV, "1")


def mlp(lr: float = 0.01, opt: str = "adam", act: str = "tanh", width: int = 6, **settings) -> keras.Model:
    keras.utils.set_random_seed(0)  # as the trainer builds each member: alone, from its seed
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width, activation=act),
                              keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(lr, **settings) if opt == "adam" else keras.optimizers.SGD(lr, **settings)
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    return model


def units(model: keras.Model, method: str = "train_step") -> list[tuple[int, ...]]:
    """The units of the latest program a group kept on its first model."""
    _, (_, planned), _ = vars(model)["_gridspec_group_functions"][method]
    return sorted(u.positions for u in planned if u.stacked)


def assert_close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key in want:
        assert len(got[key]) == len(want[key]), key
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=1e-6, err_msg=key)


class Listed(keras.utils.PyDataset):
    """A list of batches, as ``fit`` reads one."""

    def __init__(self, items: list) -> None:
        super().__init__()
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def alone(spec: dict, epochs: int, callbacks=(), validate: bool = True) -> dict:
    val = Listed(list(batches(2, 2))) if validate else None
    return mlp(**spec).fit(Listed(list(batches(1, 3))), validation_data=val, epochs=epochs, verbose=0,
                           shuffle=False, callbacks=list(callbacks)).history


SPECS = [dict(lr=0.01), dict(lr=0.003), dict(lr=0.03), dict(lr=0.01, beta_1=0.8),  # Adam, one program
         dict(act="relu"), dict(width=7),                                           # other architectures
         dict(opt="sgd", momentum=0.9), dict(opt="sgd", lr=0.05, momentum=0.9),     # SGD, one program
         dict(opt="sgd", momentum=0.0)]                                             # SGD branches on it


def test_members_that_are_one_program_stack_and_train_as_fit_trains_each():
    models = [mlp(**s) for s in SPECS]
    outcomes = fit_group(models, list(batches(1, 3)), epochs=3, validation_data=list(batches(2, 2)))
    assert units(models[0]) == [(0, 1, 2, 3), (6, 7)]
    assert units(models[0], "test_step") == [(0, 1, 2, 3, 6, 7, 8)]  # evaluation has no optimizer
    _, (_, planned), _ = vars(models[0])["_gridspec_group_functions"]["train_step"]
    adam = next(u for u in planned if u.positions == (0, 1, 2, 3))
    assert list(adam.settings) == ["beta_1"]  # Adam's beta_1 is an input of the stacked step
    np.testing.assert_allclose(adam.settings["beta_1"], [0.9, 0.9, 0.9, 0.8])
    expected = [alone(s, 3) for s in SPECS]
    for got, want in zip(outcomes, expected):
        assert got.error is None
        assert_close(got.history, want)
    ranking = np.argsort([o.history["val_loss"][-1] for o in outcomes])
    assert list(ranking) == list(np.argsort([h["val_loss"][-1] for h in expected]))


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int, fail: bool = False) -> None:
        super().__init__()
        self.epoch, self.fail = epoch, fail

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            if self.fail:
                raise RuntimeError("this member fails")
            self.model.stop_training = True


def test_a_stacked_member_that_stops_or_fails_leaves_its_stack_and_the_rest_go_on():
    specs = [dict(lr=0.01), dict(lr=0.003), dict(lr=0.03), dict(lr=0.02)]
    callbacks = [[], [StopAfter(0)], [StopAfter(1, fail=True)], []]
    models = [mlp(**s) for s in specs]
    outcomes = fit_group(models, list(batches(1, 3)), epochs=4, validation_data=list(batches(2, 2)),
                         callbacks=callbacks)
    assert units(models[0]) == [(0, 1)]  # the last membership: members 0 and 3, still one stack
    assert isinstance(outcomes[2].error, RuntimeError) and outcomes[2].history["loss"]
    assert [len(o.history["loss"]) for o in outcomes] == [4, 1, 1, 4]
    for i in (0, 1, 3):
        assert outcomes[i].error is None
        assert_close(outcomes[i].history, alone(specs[i], 4, [StopAfter(0)] if i == 1 else []))
    first_epoch = alone(specs[2], 1)
    assert_close(outcomes[2].history, first_epoch)


def test_a_stacked_member_read_mid_epoch_shows_its_own_weights_and_goes_on_from_them():
    specs = [dict(lr=0.01), dict(lr=0.05), dict(lr=0.002)]
    seen = [Weights(), Weights(), Weights()]
    models = [mlp(**s) for s in specs]
    outcomes = fit_group(models, list(batches(1, 3)), epochs=2, callbacks=[[seen[0]], [], [seen[2]]])
    assert units(models[0]) == [(0, 1, 2)]
    for spec, got, cb in zip(specs, outcomes, seen):
        if cb is seen[1]:
            continue
        solo = Weights()
        assert_close(got.history, alone(spec, 2, [solo], validate=False))
        assert len(cb.seen) == len(solo.seen) == 6
        for a, b in zip(cb.seen, solo.seen):
            for wa, wb in zip(a, b):
                np.testing.assert_allclose(wa, wb, rtol=RTOL, atol=1e-6)


class Scale(keras.layers.Layer):
    """Multiplies by a factor that its config does not show."""

    def __init__(self, factor: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


def test_members_stack_on_what_they_compute_not_on_their_configs():
    def scaled(factor: float, lr: float) -> keras.Model:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), Scale(factor), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
        return model

    models = [scaled(1.0, 0.01), scaled(2.0, 0.01), scaled(1.0, 0.02), scaled(1.0, 0.03)]
    outcomes = fit_group(models, list(batches(1, 2)), epochs=1)
    assert all(o.error is None for o in outcomes)
    assert units(models[0]) == [(0, 2, 3)]  # the factor-2 model computes something else: alone


def test_stacking_is_off_on_a_cpu_unless_asked_for(monkeypatch):
    monkeypatch.delenv(jax_stack.STACK_ENV)
    assert jax_stack.enabled() is False  # this machine's JAX runs on its CPU
    for value, expected in [("1", True), ("always", True), ("0", False), ("off", False)]:
        monkeypatch.setenv(jax_stack.STACK_ENV, value)
        assert jax_stack.enabled() is expected
    monkeypatch.setenv(jax_stack.STACK_ENV, "0")
    models = [mlp(0.01), mlp(0.02)]
    fit_group(models, list(batches(1, 2)), epochs=1)
    assert units(models[0]) == []


@gs.grid(lr=[0.05, 0.02, 0.01, 0.005], beta_1=[0.9, 0.7])
def lr_grid(lr, beta_1):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr, beta_1=beta_1), loss="mean_squared_error", metrics=["mae"])
    return model


def train():
    yield from batches(seed=1, count=3)


def val():
    yield from batches(seed=2, count=2)


@pytest.mark.parametrize("strategy", ["grid", "halving"])
def test_a_stacked_search_ranks_its_trials_as_fuse_1(strategy, monkeypatch):
    planned = []
    plan = jax_stack.plan
    monkeypatch.setattr(jax_stack, "plan", lambda *a: planned.append(plan(*a)) or planned[-1])
    settings = dict(epochs=4 if strategy == "halving" else 2, steps_per_epoch=3, validation_steps=2,
                    train=train, val=val, strategy=strategy)
    if strategy == "halving":
        settings["eta"] = 2
    events = []
    stacked = lr_grid.search(verbose=events.append, **settings)
    assert max(len(u.positions) for p in planned for u in p) == 8  # the first rung: one stack
    notes = [e.text for e in events if type(e).__name__ == "Note"]
    assert sum("train stacked" in n and "GRIDSPEC_STACK=0" in n for n in notes) == 1, notes  # said once
    fitted_events = []
    fitted = lr_grid.search(fuse=1, verbose=fitted_events.append, **settings)
    assert not any("stacked" in e.text for e in fitted_events if type(e).__name__ == "Note")
    assert all(t.fused_with for t in stacked.trials)
    assert strategy != "grid" or all(len(t.fused_with) == 7 for t in stacked.trials)
    assert [t.number for t in stacked.ranked()] == [t.number for t in fitted.ranked()]
    assert stacked.best_params == fitted.best_params
    for s, f in zip(stacked.trials, fitted.trials):
        assert (s.status, s.epochs, s.best_epoch) == (f.status, f.epochs, f.best_epoch)
        assert_close(s.history, f.history)
