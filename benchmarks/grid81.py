"""An 81-combination grid (3^4) for the budget benchmarks: a tiny MLP on seed-12-like data.

Four axes of three values that genuinely change the learning curves: the learning rate
(0.03 / 0.003 / 0.0003), the optimizer (Adam, RMSprop, SGD with momentum 0 — the slow one),
the hidden width (4 / 16 / 64) and the hidden activation (relu / tanh / sigmoid). Some
combinations learn fast and stall, others start slowly and catch up (small learning rates,
SGD), so the first epochs do not always rank the combinations as the last one does: a fair
test for Hyperband and ASHA.

Data: seed-12's shape (batches of 64 x 16 features, endless training batches, a fixed
validation set), with a non-linear target so width and activation matter:
``y = 0.8 tanh(x.w1 / 3) + 0.3 sin(x.w2) + 0.05 noise``.

    PYTHONPATH=. python benchmarks/strategies.py --grid grid81 --epochs 9 --steps 20 --val-steps 5
"""

from __future__ import annotations

import keras
import numpy as np

import gridspec as gs

FEATURES = 16
_RNG = np.random.default_rng(81)
W1 = _RNG.normal(size=(FEATURES, 1)).astype("float32")
W2 = _RNG.normal(size=(FEATURES, 1)).astype("float32") / 2


def _batches(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(64, FEATURES)).astype("float32")
        noise = rng.normal(size=(64, 1)).astype("float32")
        y = 0.8 * np.tanh(x @ W1 / 3) + 0.3 * np.sin(x @ W2) + 0.05 * noise
        yield x, y.astype("float32")


@gs.train_data
def train():
    yield from _batches(seed=8101, count=50)


@gs.val_data
def val():
    yield from _batches(seed=8102, count=10)


OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}


@gs.grid(lr=[0.03, 0.003, 0.0003], optimizer=["adam", "rmsprop", "sgd"], units=[4, 16, 64],
         act=["relu", "tanh", "sigmoid"])
def build(lr, optimizer, units, act):
    model = keras.Sequential([keras.Input((FEATURES,)),
                              keras.layers.Dense(units, activation=act),
                              keras.layers.Dense(1)])
    model.compile(optimizer=OPTIMIZERS[optimizer](lr), loss="mean_squared_error")
    return model
