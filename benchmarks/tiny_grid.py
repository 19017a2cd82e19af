"""A tiny model over 200 combinations: the memory benchmark's workload."""

import keras
import numpy as np

import gridspec as gs


@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])


@gs.grid(units=list(range(1, 201)))
def build(units):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model
