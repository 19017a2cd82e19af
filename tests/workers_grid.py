"""A tiny grid for the worker-process tests: importable by name, so workers can load it.

``build`` appends one line per trial to the file named by ``GS_TEST_LOG`` (when set): the
combination, the worker's pid and the environment the worker was started with.
``fragile`` kills its own process for ``units=3``, the way the OOM-killer would.
"""

from __future__ import annotations

import json
import os
import signal

import keras
import numpy as np

import gridspec as gs


def _batches(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1]).astype("float32")


@gs.train_data
def train():
    yield from _batches(1, 6)


@gs.val_data
def val():
    yield from _batches(2, 2)


def _log(**params):
    path = os.environ.get("GS_TEST_LOG")
    if path:
        line = json.dumps({"params": params, "pid": os.getpid(),
                           "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                           "threads": os.environ.get("TF_NUM_INTRAOP_THREADS")})
        with open(path, "a") as f:
            f.write(line + "\n")


def _model(units: int, lr: float):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


@gs.grid(units=[2, 4], lr=[0.01, 0.05])
def build(units, lr):
    _log(units=units, lr=lr)
    return _model(units, lr)


@gs.grid(units=[2, 3, 4])
def fragile(units):
    if units == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return _model(units, 0.01)
