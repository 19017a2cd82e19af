"""A two-input model fed with dict batches: keys match the names of the keras.Inputs.

Run it with:  gridspec run examples/multi_input.py:build --epochs 2 --steps-per-epoch 20 --validation-steps 5
"""

import keras
import numpy as np

import gridspec as gs


def _batches(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        numeric = rng.normal(size=(32, 8)).astype("float32")
        category = rng.integers(0, 5, size=(32, 1)).astype("int32")
        y = (numeric[:, :1] + 0.2 * category).astype("float32")
        yield {"numeric": numeric, "category": category}, y


@gs.train_data
def train():
    yield from _batches(seed=0, count=40)


@gs.val_data
def val():
    yield from _batches(seed=1, count=5)


@gs.grid(embedding=[2, 4], units=[16, 32], merge=["concat", "add"])
def build(embedding, units, merge):
    numeric = keras.Input((8,), name="numeric")
    category = keras.Input((1,), name="category", dtype="int32")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(5, embedding)(category))
    left = keras.layers.Dense(units, activation="relu")(numeric)
    right = keras.layers.Dense(units, activation="relu")(embedded)
    merged = keras.layers.Concatenate()([left, right]) if merge == "concat" else keras.layers.Add()([left, right])
    model = keras.Model({"numeric": numeric, "category": category}, keras.layers.Dense(1)(merged))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model
