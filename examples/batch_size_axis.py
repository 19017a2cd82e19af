"""An axis consumed by the data factory, not the model: ``batch_size``.

The factory names the axis as a parameter, so gridspec calls it with each trial's value.
Run it with:  gridspec run examples/batch_size_axis.py:build --epochs 2 --steps-per-epoch 20 --validation-steps 5
"""

import keras
import numpy as np

import gridspec as gs

X = np.random.default_rng(0).normal(size=(2048, 16)).astype("float32")
Y = np.tanh(X[:, :2].sum(axis=1, keepdims=True)).astype("float32")


@gs.train_data
def train(batch_size):
    for start in range(0, 1536, batch_size):
        yield X[start : start + batch_size], Y[start : start + batch_size]


@gs.val_data
def val():
    for start in range(1536, 2048, 128):
        yield X[start : start + 128], Y[start : start + 128]


@gs.grid(batch_size=[16, 64], lr=[0.003, 0.001])
def build(lr):
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model
