"""A promoted trial continues on exactly the curve of an uninterrupted run, dropout included.

``model.save`` keeps weights and optimizer state but not the state of the model's
random-number generators (each ``Dropout``'s ``SeedGenerator``): a model continued from its
checkpoint drew its first epochs' dropout masks again. Every path a promoted model takes is
checked against a plain grid run of the same combinations (``fuse=1``, the oracle): from its
checkpoint file (``fuse=1``; a lone survivor of a fused rung), from memory (a fused rung) and
through a journal.
"""

from __future__ import annotations

import numpy as np
import pytest

import gridspec as gs

FEATURES = 8
WEIGHTS = np.random.default_rng(7).normal(size=(FEATURES, 1)).astype("float32")


def train():
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.normal(size=(16, FEATURES)).astype("float32")
        yield x, np.tanh(x @ WEIGHTS / 4)


def val():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, FEATURES)).astype("float32")
    yield x, np.tanh(x @ WEIGHTS / 4)


@gs.grid(rate=[0.2, 0.3], lr=[0.03, 0.01, 0.003])
def build(rate, lr):
    import keras

    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dropout(rate), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


SETTINGS = dict(epochs=3, steps_per_epoch=4, validation_steps=1, train=train, val=val, seed=0)


@pytest.fixture(scope="module")
def full():
    return build.search(fuse=1, **SETTINGS)


def _continued_exactly(result, full) -> list[int]:
    promoted = [t for t in result.trials if t.epochs == SETTINGS["epochs"]]
    assert promoted and all(t.status is gs.TrialStatus.COMPLETE for t in promoted)
    for trial in promoted:
        alone = full.trials[trial.number - 1]
        assert trial.history == alone.history, f"trial {trial.number} {dict(trial.params)} left its curve"
    return [t.number for t in promoted]


@pytest.mark.parametrize("strategy, fuse, max_trials, journal", [
    ("halving", 1, None, False),  # every continuation from the checkpoint file
    ("halving", 1, None, True),
    ("asha", 1, None, False),
    ("halving", "auto", None, False),  # two promoted: a fused group, continued from memory
    ("halving", "auto", 3, False),  # a lone survivor trains alone, from its file
    ("halving", "auto", None, True),
])
def test_a_promoted_dropout_model_continues_on_its_own_curve(full, tmp_path, strategy, fuse, max_trials, journal):
    storage = str(tmp_path / "search.sqlite") if journal else None
    result = build.search(strategy=strategy, fuse=fuse, max_trials=max_trials, storage=storage, **SETTINGS)
    assert _continued_exactly(result, full)


def test_the_checkpoint_file_carries_the_dropout_state(tmp_path):
    import keras

    from gridspec.training import continuation

    keras.utils.set_random_seed(0)
    model = build.fn(rate=0.3, lr=0.01)
    model.fit(np.ones((16, FEATURES)), np.ones((16, 1)), epochs=2, batch_size=4, verbose=0)
    (state,) = continuation.seed_states(model)
    assert int(state.numpy()[1]) == 8  # one draw per training step
    continuation.keep(model, str(tmp_path / "trial-1-0.keras"))
    keras.utils.set_random_seed(0)
    restored = continuation.restore(build.fn(rate=0.3, lr=0.01), str(tmp_path / "trial-1-0.keras"))
    assert [list(v.numpy()) for v in continuation.seed_states(restored)] == [list(state.numpy())]
