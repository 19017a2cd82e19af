"""Adam and SGD-with-momentum as two sub-grids: momentum is tried only where it means something.

As one product, ``opt=["adam", "sgd"] x momentum=[0.0, 0.9]`` would train the Adam model twice
under two names; a list of grids trains 2 Adam and 4 SGD combinations, 6 in all. The Adam
trials get no ``momentum``: the function's default applies, and the leaderboard, the CSV
(an empty cell) and the JSON (``null``) show it as absent. See docs/grid.md.

Run it with:  gridspec run examples/optimizers_union.py:build --epochs 2 --steps-per-epoch 10 --validation-steps 2
"""

import keras
import numpy as np

import gridspec as gs

X = np.random.default_rng(0).normal(size=(1024, 8)).astype("float32")
Y = np.tanh(X[:, :2].sum(axis=1, keepdims=True)).astype("float32")


@gs.train_data
def train():
    for start in range(0, 768, 32):
        yield X[start : start + 32], Y[start : start + 32]


@gs.val_data
def val():
    for start in range(768, 1024, 64):
        yield X[start : start + 64], Y[start : start + 64]


@gs.grid([
    dict(opt=["adam"], lr=[0.003, 0.001]),
    dict(opt=["sgd"], lr=[0.03, 0.01], momentum=[0.0, 0.9]),
])
def build(opt, lr, momentum=0.0):
    optimizer = keras.optimizers.Adam(lr) if opt == "adam" else keras.optimizers.SGD(lr, momentum=momentum)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model
