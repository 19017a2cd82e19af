"""The space: order, size and indexing, without TensorFlow and without materialising."""

from __future__ import annotations

import ast
import itertools
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gridspec as gs
from gridspec.space import Space


def test_order_is_itertools_product_last_axis_fastest():
    axes = {"lr": [0.1, 0.01], "act": ["relu", "tanh", "swish"], "units": [8, 16]}
    space = Space.from_dict(axes)
    expected = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    assert list(space) == expected
    assert [space[i] for i in range(len(space))] == expected
    assert len(space) == 12
    assert space[-1] == expected[-1]


def test_huge_space_is_indexed_without_materialising():
    space = Space.from_dict({f"a{i}": range(10) for i in range(8)})  # 10**8 combinations
    assert len(space) == 10**8
    assert space[0] == {f"a{i}": 0 for i in range(8)}
    assert space[12_345_678] == {"a0": 1, "a1": 2, "a2": 3, "a3": 4, "a4": 5, "a5": 6, "a6": 7, "a7": 8}
    assert space.index(space[98_765_432]) == 98_765_432
    assert sys.getsizeof(space) < 1000
    with pytest.raises(IndexError):
        space[10**8]


def test_numpy_values_become_plain_python():
    space = Space.from_dict({"lr": np.array([0.1, 0.01]), "units": np.arange(2), "d": [np.float32(0.5)]})
    params = space[3]
    assert params == {"lr": 0.01, "units": 1, "d": 0.5}
    assert all(type(v) in (float, int) for v in params.values())
    assert ast.literal_eval(repr(params)) == params


def test_any_python_object_is_a_value():
    space = Space.from_dict({"layers": [[16, 8], [32]], "cls": [int, float], "t": (1, 2)})
    assert space[0] == {"layers": [16, 8], "cls": int, "t": 1}
    assert len(space) == 8


def test_grid_function_keeps_working_and_exposes_space():
    @gs.grid(a=[1, 2], b=["x", "y", "z"])
    def build(a, b="q"):
        return (a, b)

    assert build(a=3, b="w") == (3, "w")
    assert len(build.space) == 6
    assert build.space[1] == {"a": 1, "b": "y"}
    assert build.__name__ == "build"
    assert "6 combinations" in repr(build)


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=5))
def test_size_is_product_and_every_combination_once(lengths):
    axes = {f"a{i}": list(range(n)) for i, n in enumerate(lengths)}
    space = Space.from_dict(axes)
    combos = [tuple(c.values()) for c in space]
    assert len(space) == np.prod(lengths)
    assert len(set(combos)) == len(combos) == len(space)
    assert combos == list(itertools.product(*axes.values()))
    for i in range(len(space)):
        assert space.index(space[i]) == i
