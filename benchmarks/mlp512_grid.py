"""Workload "mlp-512" (docs/performance.md): 12 combinations of Input(64) -> 3 x Dense(512) -> Dense(1), batches of 256."""

import keras
import numpy as np

import gridspec as gs

FEATURES, BATCH = 64, 256
WEIGHTS = np.random.default_rng(7).normal(size=(FEATURES, 1)).astype("float32")


def _batches(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(BATCH, FEATURES)).astype("float32")
        noise = rng.normal(size=(BATCH, 1)).astype("float32")
        yield x, (0.5 + 0.4 * np.tanh(x @ WEIGHTS / 4 + 0.1 * noise)).astype("float32")


@gs.train_data
def train():
    """50 batches; made endless."""
    yield from _batches(seed=1234, count=50)


@gs.val_data
def val():
    yield from _batches(seed=4321, count=10)


@gs.grid(lr=[0.001, 0.0005], act_in=["relu", "swish", "tanh"], act_out=["linear", "tanh"])
def build(lr, act_in, act_out):
    model = keras.Sequential([keras.Input((FEATURES,))]
                             + [keras.layers.Dense(512, activation=act_in) for _ in range(3)]
                             + [keras.layers.Dense(1, activation=act_out)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model
