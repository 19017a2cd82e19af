"""Workload "seed-12" (docs/performance.md, "The workloads"), shared by every variant of the benchmarks.

The gridspec variants search ``examples/seed_grid.py:build`` (the same model and data);
the hand-written loop and the peers use the functions below, which are the same code.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import seed_grid  # noqa: E402  (the workload's model and data, as gridspec users write them)

AXES = {
    "lr": [0.001, 0.0005],
    "loss": ["mean_squared_error"],
    "act_in": ["relu", "swish", "tanh"],
    "act_out": ["tanh", "sigmoid"],
}
EPOCHS, STEPS, VAL_STEPS = 3, 50, 10


def combinations():
    names = list(AXES)
    for values in itertools.product(*AXES.values()):
        yield dict(zip(names, values))


def build(lr, loss, act_in, act_out):
    import keras

    keras.utils.set_random_seed(0)
    return seed_grid.build(lr=lr, loss=loss, act_in=act_in, act_out=act_out)


def datasets():
    """The seed article's pipeline: endless generators through ``tf.data.Dataset.from_generator``."""
    import tensorflow as tf

    def endless(factory):
        def gen():
            while True:
                yield from factory()
        return gen

    sig = (tf.TensorSpec((None, seed_grid.FEATURES), tf.float32), tf.TensorSpec((None, 1), tf.float32))
    train = tf.data.Dataset.from_generator(endless(seed_grid.train), output_signature=sig)
    val = tf.data.Dataset.from_generator(endless(seed_grid.val), output_signature=sig)
    return train, val


def fit_timer():
    """A Keras callback summing the wall time spent inside ``fit``."""
    import time

    import keras

    class FitTimer(keras.callbacks.Callback):
        total = 0.0

        def on_train_begin(self, logs=None):
            self._t = time.perf_counter()

        def on_train_end(self, logs=None):
            FitTimer.total += time.perf_counter() - self._t

    return FitTimer
