"""Grid and random strategies as pure ask/tell machines (no TensorFlow)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gridspec.strategies import Decision, GridStrategy, Proposal, RandomStrategy


def drain(strategy):
    proposals = []
    while isinstance(p := strategy.ask(), Proposal):
        proposals.append(p)
        strategy.tell(p, 1.0)
    assert p is Decision.STOP
    return proposals


def test_grid_runs_every_index_in_order_at_full_budget():
    proposals = drain(GridStrategy(size=5, epochs=3))
    assert [p.index for p in proposals] == [0, 1, 2, 3, 4]
    assert {p.epochs for p in proposals} == {3}
    assert [p.number for p in proposals] == [1, 2, 3, 4, 5]


def test_grid_max_trials_caps():
    assert [p.index for p in drain(GridStrategy(size=10, epochs=1, max_trials=3))] == [0, 1, 2]


@given(st.integers(1, 10**12), st.integers(1, 50), st.integers(0, 2**32))
def test_random_draws_distinct_sorted_and_seeded(size, k, seed):
    a = [p.index for p in drain(RandomStrategy(size, 1, k, seed))]
    b = [p.index for p in drain(RandomStrategy(size, 1, k, seed))]
    assert a == b
    assert len(a) == min(size, k) == len(set(a))
    assert a == sorted(a)
    assert all(0 <= i < size for i in a)
