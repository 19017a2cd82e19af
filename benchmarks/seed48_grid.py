"""BENCH's "seed-48": the seed grid with a ``units=[16, 32, 64, 128]`` axis, the seed's data."""

import keras

import gridspec as gs
from seed_grid import FEATURES, train, val  # noqa: F401  (the seed's data; found by the module scan)


@gs.grid(lr=[0.001, 0.0005], loss=["mean_squared_error"], act_in=["relu", "swish", "tanh"],
         act_out=["tanh", "sigmoid"], units=[16, 32, 64, 128])
def build(lr, loss, act_in, act_out, units):
    model = keras.Sequential([keras.Input((FEATURES,)),
                              keras.layers.Dense(units, activation=act_in),
                              keras.layers.Dense(32, activation=act_in),
                              keras.layers.Dense(1, activation=act_out)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    return model
