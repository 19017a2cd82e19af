"""The seed article's search: 12 combinations of lr x loss x act_in x act_out.

Run it with:  gridspec run examples/seed_grid.py:build --epochs 3 --steps-per-epoch 50 --validation-steps 10
"""

import keras
import numpy as np

import gridspec as gs

FEATURES = 16
WEIGHTS = np.random.default_rng(7).normal(size=(FEATURES, 1)).astype("float32")


def _batches(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(64, FEATURES)).astype("float32")
        noise = rng.normal(size=(64, 1)).astype("float32")
        y = 0.5 + 0.4 * np.tanh(x @ WEIGHTS / 4 + 0.1 * noise)
        yield x, y.astype("float32")


@gs.train_data
def train():
    """50 batches; gridspec makes the generator endless."""
    yield from _batches(seed=1234, count=50)


@gs.val_data
def val():
    yield from _batches(seed=4321, count=10)


@gs.grid(
    lr=[0.001, 0.0005],
    loss=["mean_squared_error"],
    act_in=["relu", "swish", "tanh"],
    act_out=["tanh", "sigmoid"],
)
def build(lr, loss, act_in, act_out):
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation=act_in),
            keras.layers.Dense(32, activation=act_in),
            keras.layers.Dense(1, activation=act_out),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    return model
