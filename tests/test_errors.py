"""Every bad usage docs/errors.md lists, with its message pinned.

Each case: what the user wrote, the exception type, and the phrases the message must hold
(what is wrong, the value as written, what would be valid).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import gridspec as gs
from gridspec.registry import load_module

from conftest import batches

# -- decoration time -----------------------------------------------------------------------


def _build(lr=0.1, act="relu"):
    return None


DECORATION_CASES = [
    ("no axes", lambda: gs.grid()(_build), gs.GridError, ["@grid() needs at least one axis", "lr=["]),
    ("scalar axis", lambda: gs.grid(lr=0.001)(_build), TypeError,
     ["grid axis 'lr' must be a list of candidate values", "lr=[0.001]", "got lr=0.001, a float"]),
    ("string axis", lambda: gs.grid(act="relu")(_build), TypeError,
     ["grid axis 'act'", "act=['relu']", "a str"]),
    ("empty axis", lambda: gs.grid(lr=[])(_build), gs.GridSpecError, ["grid axis 'lr' is empty"]),
    ("iterator axis", lambda: gs.grid(lr=iter([1, 2]))(_build), gs.GridError, ["finite list", "lr=list(...)"]),
    ("bare @grid", lambda: gs.grid(_build), gs.GridError, ["keywords", "@grid(lr=[0.001, 0.0005])", "_build()"]),
    ("required parameter not an axis",
     lambda: gs.grid(lr=[0.1])(lambda lr, units: None), gs.GridError,
     ["parameter 'units' with no default that is not a grid axis", "units=[...]"]),
    ("double @grid", lambda: gs.grid(lr=[1])(gs.grid(lr=[2])(_build)), gs.GridError,
     ["already decorated with @grid"]),
    ("factory decorated twice", lambda: gs.val_data(gs.train_data(lambda: None)), gs.GridError,
     ["already registered as", "(train_data)"]),
]


@pytest.mark.parametrize("case, make, exc_type, phrases", DECORATION_CASES, ids=[c[0] for c in DECORATION_CASES])
def test_decoration_errors(case, make, exc_type, phrases):
    with pytest.raises(exc_type) as info:
        make()
    assert isinstance(info.value, gs.GridSpecError) and isinstance(info.value, ValueError)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_invalid_grid_is_also_type_error():
    with pytest.raises(TypeError):
        gs.grid(lr=0.1)


# -- search time ---------------------------------------------------------------------------

HEADER = '''
import numpy as np
import keras
import gridspec as gs

def gen(n=4):
    rng = np.random.default_rng(0)
    for _ in range(n):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

def model(act="relu"):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])
    m.compile(optimizer="sgd", loss="mse")
    return m
'''

SEARCH_CASES = [
    ("axis nobody takes", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"], lrr=[0.1])
def build(act, lr=0.1): return model(act)
''', {"steps_per_epoch": 2}, gs.GridError,
     ["build() has no parameter 'lrr' for grid axis lrr=[0.1]", "did you mean 'lr'?"]),
    ("no train_data", '''
@gs.val_data
def val(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2}, LookupError, ["no @train_data factory in module", "found: val (val_data)"]),
    ("several train_data, none named", '''
@gs.train_data
def small(): return gen()
@gs.train_data(name="big")
def other(): return gen(8)
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2}, LookupError,
     ["several @train_data factories", "'small', 'big'", "search(train='small')"]),
    ("unknown factory name", '''
@gs.train_data
def small(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2, "train": "smal"}, LookupError,
     ["no @train_data factory named 'smal'", "did you mean 'small'?"]),
    ("factory yields non-batches", '''
@gs.train_data
def train():
    for _ in range(3):
        yield np.zeros((8, 4), "float32")
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2}, gs.DataError,
     ["data factory 'train' (train_data) yielded an ndarray", "batch 0", "(x, y)"]),
    ("factory returns a number", '''
@gs.train_data
def train(): return 42
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2}, gs.DataError,
     ["data factory 'train' (train_data) returned an int", "tf.data.Dataset"]),
    ("dtype changes", '''
@gs.train_data
def train():
    x = np.zeros((8, 4), "float32")
    yield x, x[:, :1]
    yield x, x[:, :1]
    yield x.astype("float64"), x[:, :1]
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 5}, gs.DataError,
     ["data factory 'train' (train_data) changed its batch structure at batch 2", "x has dtype float64 instead of float32"]),
    ("structure changes", '''
@gs.train_data
def train():
    x = np.zeros((8, 4), "float32")
    yield x, x[:, :1]
    yield {"a": x}, x[:, :1]
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 5}, gs.DataError,
     ["at batch 1", "x is a dict where the first batch had an array"]),
    ("factory raises inside tf.data", '''
@gs.train_data
def train():
    x = np.zeros((8, 4), "float32")
    yield x, x[:, :1]
    yield x, x[:, :1]
    raise RuntimeError("disk on fire")
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 5}, gs.DataError,
     ["data factory 'train' (train_data) raised RuntimeError at batch 2: disk on fire"]),
    ("steps_per_epoch missing", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {}, gs.GridSpecError, ["steps_per_epoch is required", "'train' (train_data) is endless"]),
    ("validation_steps missing", '''
@gs.train_data
def train(): return gen()
@gs.val_data
def val(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2}, gs.GridSpecError, ["validation_steps is required", "'val' (val_data)"]),
    ("model function returns None", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): model(act)
''', {"steps_per_epoch": 2}, gs.GridError, ["build() must return a compiled keras.Model (got NoneType)"]),
    ("model not compiled", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
''', {"steps_per_epoch": 2}, gs.GridError, ["not compiled", "model.compile("]),
    ("unknown strategy", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2, "strategy": "bayes"}, gs.GridSpecError, ["unknown strategy 'bayes'", "'grid'", "'random'", "'asha'", "'hyperband'"]),
    ("unknown executor", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2, "executor": "dask"}, gs.GridSpecError, ["unknown executor 'dask'"]),
    ("objective not in history", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2, "objective": "accuracy"}, gs.GridSpecError,
     ["objective 'accuracy' is not in the training history", "the keys there are loss"]),
    ("bad direction", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2, "direction": "up"}, gs.GridSpecError, ["direction must be 'min' or 'max'", "'up'"]),
    ("bad epochs", '''
@gs.train_data
def train(): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2, "epochs": 0}, gs.GridSpecError, ["epochs must be a positive integer", "epochs=0"]),
    ("factory parameter that is not an axis", '''
@gs.train_data
def train(batch): return gen()
@gs.grid(act=["relu"])
def build(act): return model(act)
''', {"steps_per_epoch": 2}, gs.GridError, ["data factory 'train' (train_data) has a parameter 'batch' that is not a grid axis"]),
    ("too many combinations", '''
@gs.train_data
def train(): return gen()
@gs.grid(a=range(1000), b=range(1001))
def build(a, b): return model()
''', {"steps_per_epoch": 2}, gs.GridSpecError, ["grid of 1,001,000 combinations", "max_trials"]),
]


@pytest.mark.parametrize("case, body, settings, exc_type, phrases", SEARCH_CASES, ids=[c[0] for c in SEARCH_CASES])
def test_search_errors(case, body, settings, exc_type, phrases, write_module):
    module = load_module(str(write_module(HEADER + body)))
    with pytest.raises(exc_type) as info:
        module.build.search(**settings)
    assert isinstance(info.value, gs.GridSpecError)
    message = str(info.value)
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    assert not re.search(r"tensorflow\.python|Traceback", message)
