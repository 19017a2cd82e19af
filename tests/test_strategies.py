"""Grid and random strategies as pure ask/tell machines (no TensorFlow)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import numpy as np

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


# -- asha and hyperband: a simulated pool of workers -------------------------------------------
import heapq  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from gridspec.strategies import AshaStrategy, HyperbandStrategy, make_strategy  # noqa: E402
from gridspec.settings import SearchSettings  # noqa: E402
from gridspec.strategies.halving import ladder  # noqa: E402


def simulate(plan, workers, score, duration=lambda p: 1.0, on_wait=None):
    """Run ``plan`` on ``workers`` simulated workers; a trial takes ``duration(p)`` time units.

    Returns the proposals in the order handed out and the (proposal, score) tells in order.
    Whenever a worker is free, the plan is asked; ``on_wait`` sees each WAIT answer."""
    running: list[tuple[float, int, Proposal]] = []
    handed, told = [], []
    now, seq = 0.0, 0
    while True:
        while len(running) < workers:
            decision = plan.ask()
            if not isinstance(decision, Proposal):
                break
            handed.append(decision)
            seq += 1
            heapq.heappush(running, (now + duration(decision), seq, decision))
        else:
            decision = None
        if decision is Decision.WAIT:
            assert running, "a strategy must not wait with nothing running"
            if on_wait is not None:
                on_wait(told, handed)
        if not running:
            assert decision is Decision.STOP
            return handed, told
        now, _, proposal = heapq.heappop(running)
        value = score(proposal)
        told.append((proposal, value))
        plan.tell(proposal, value)


def check_accounts(plan, handed, told, size, epochs):
    """No (combination, budget) twice, budgets climb from where they stopped to at most
    ``epochs``, and every combination ends exactly one way: full, pruned or failed."""
    assert len({(p.index, p.epochs) for p in handed}) == len(handed)
    reached: dict[int, int] = {}
    last: dict[int, float | None] = {}
    for p, value in told:
        assert p.start_epoch == reached.get(p.index, 0) < p.epochs <= epochs
        if value is not None:
            reached[p.index] = p.epochs
        last[p.index] = value
    assert len(last) == plan.total == len({p.index for p in handed}) <= size
    full = {i for i, e in reached.items() if e == epochs and last[i] is not None}
    failed = {i for i, v in last.items() if v is None}
    assert plan.pruned == set(last) - full - failed
    assert all(reached[i] < epochs for i in plan.pruned)
    return full


budgeted = dict(size=st.integers(1, 90), epochs=st.integers(1, 30), eta=st.integers(2, 4),
                min_epochs=st.integers(1, 4), workers=st.integers(1, 6), seed=st.integers(0, 2**16),
                failing=st.integers(0, 3))


def _scores(seed, size, failing):
    """A score per combination (lower is better), the same at every budget; ``failing`` of
    them fail (at the rung they reach)."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(size).astype(float)
    fails = set(rng.choice(size, size=min(failing, size), replace=False).tolist()) if failing else set()
    return lambda p: None if p.index in fails else float(values[p.index]), values, fails


@settings(max_examples=80, deadline=None)
@given(**budgeted)
def test_property_asha_accounts_for_every_combination_and_never_idles(
    size, epochs, eta, min_epochs, workers, seed, failing
):
    score, values, fails = _scores(seed, size, failing)
    durations = np.random.default_rng(seed + 1).uniform(0.5, 2.0, size=size)
    plan = AshaStrategy(size, epochs, eta=eta, min_epochs=min_epochs, seed=seed)

    def no_work_left(told, handed):  # an outside oracle for "nothing could be handed out"
        assert len({p.index for p in handed}) == size
        for r, budget in enumerate(plan.budgets[:-1]):
            finished = {p.index: v for p, v in told if p.rung == r}
            good = sorted((v, i) for i, v in finished.items() if v is not None)
            top = {i for _, i in good[: len(finished) // eta]}
            promoted = {p.index for p in handed if p.rung == r + 1}
            assert top <= promoted, f"rung {r + 1} owes a promotion while the plan waits"

    handed, told = simulate(plan, workers, score, lambda p: float(durations[p.index]) * p.epochs,
                            on_wait=no_work_left)
    full = check_accounts(plan, handed, told, size, epochs)
    assert sorted({p.index for p in handed if p.rung == 0}) == list(range(size))
    assert {p.epochs for p in handed} <= set(ladder(epochs, eta, min_epochs))
    ok = [i for i in range(size) if i not in fails]
    if ok:
        assert min(ok, key=lambda i: values[i]) in full  # the best is never pruned


@settings(max_examples=40, deadline=None)
@given(**budgeted)
def test_property_asha_and_hyperband_repeat_themselves_for_a_seed(
    size, epochs, eta, min_epochs, workers, seed, failing
):
    score, _, _ = _scores(seed, size, failing)
    for kind in (AshaStrategy, HyperbandStrategy):
        runs = [simulate(kind(size, epochs, eta=eta, min_epochs=min_epochs, seed=seed), workers, score)
                for _ in range(2)]
        assert runs[0] == runs[1]


def test_asha_with_one_worker_never_waits_and_is_deterministic():
    a, _ = simulate(AshaStrategy(30, 9, eta=3, seed=5), 1, lambda p: float(p.index % 7),
                    on_wait=lambda *_: pytest.fail("one worker never waits"))
    b, _ = simulate(AshaStrategy(30, 9, eta=3, seed=5), 1, lambda p: float(p.index % 7))
    c, _ = simulate(AshaStrategy(30, 9, eta=3, seed=6), 1, lambda p: float(p.index % 7))
    assert a == b != c


def test_asha_promotes_as_soon_as_a_combination_is_in_its_rungs_top_third():
    plan = AshaStrategy(9, 9, eta=3, seed=0)
    first = [plan.ask() for _ in range(3)]
    assert [p.rung for p in first] == [0, 0, 0] and all(p.epochs == 1 for p in first)
    plan.tell(first[0], 5.0)
    plan.tell(first[1], 1.0)
    fourth = plan.ask()  # 2 finished: the top 1/3 of 2 is nobody yet, so a new combination
    assert fourth.rung == 0 and fourth.index not in {p.index for p in first}
    plan.tell(first[2], 3.0)
    assert plan.ask() == Proposal(index=first[1].index, epochs=3, start_epoch=1, rung=1)
    assert plan.ask().rung == 0  # the best is promoted already; the rest is not top 1/3


def test_asha_waits_only_while_a_running_trial_could_be_promoted():
    plan = AshaStrategy(3, 9, eta=3, seed=0)
    started = [plan.ask() for _ in range(3)]
    assert plan.ask() is Decision.WAIT
    for p, value in zip(started, (2.0, 1.0, 3.0)):
        plan.tell(p, value)
    lifted = plan.ask()
    assert (lifted.index, lifted.epochs, lifted.start_epoch) == (started[1].index, 3, 1)
    assert plan.ask() is Decision.WAIT
    plan.tell(lifted, 1.0)  # the rung of 3 epochs holds one: fewer than eta, it goes to 9
    assert plan.ask() == Proposal(index=started[1].index, epochs=9, start_epoch=3, rung=2)
    assert plan.ask() is Decision.WAIT
    plan.tell(Proposal(index=started[1].index, epochs=9, start_epoch=3, rung=2), 0.5)
    assert plan.ask() is Decision.STOP
    assert plan.pruned == {started[0].index, started[2].index}
    lines = [str(o) for o in plan.take_outcomes()]
    n = started[1].number
    assert lines == [
        f"Rung 1 (1 epoch): 3 trained; promoted 1 to 3 epochs (trials {n}), pruned 2",
        f"Rung 2 (3 epochs): 1 trained; promoted 1 to 9 epochs (trials {n}), pruned 0",
        f"Rung 3 (9 epochs): 1 trained; done; best trial {n}",
    ]


def test_asha_sends_the_best_of_a_rung_too_small_to_promote_straight_to_the_end():
    handed, _ = simulate(AshaStrategy(2, 27, eta=3), 1, lambda p: float(p.index))
    assert [(p.index, p.start_epoch, p.epochs, p.rung) for p in handed][-1] == (0, 1, 27, 1)
    assert len(handed) == 3


def test_asha_rung_sizes_say_model_i_of_n():
    plan = AshaStrategy(9, 9, eta=3, seed=0)
    assert [plan.rung_size(r) for r in range(3)] == [9, 3, 1]
    simulate(plan, 2, lambda p: None if p.rung == 0 and p.index < 7 else float(p.index))
    assert [plan.rung_size(r) for r in range(3)] == [9, 2, 1]  # 7 failed: both others go on


def test_asha_failures_are_never_promoted_and_all_failing_stops_at_the_bottom():
    plan = AshaStrategy(5, 9)
    handed, _ = simulate(plan, 2, lambda p: None)
    assert len(handed) == 5 and plan.pruned == frozenset()
    assert [str(o) for o in plan.take_outcomes()] == ["Rung 1 (1 epoch): 5 trained, 5 failed; done"]


def test_asha_max_trials_samples_with_the_seed():
    a, _ = simulate(AshaStrategy(10**9, 3, max_trials=9, seed=1), 1, lambda p: float(p.index))
    b, _ = simulate(AshaStrategy(10**9, 3, max_trials=9, seed=1), 1, lambda p: float(p.index))
    assert a == b and len({p.index for p in a}) == 9 and max(p.index for p in a) > 9
    assert make_strategy("asha", size=10**9, epochs=3, max_trials=9, seed=1).total == 9


def test_asha_maximises_when_told_to():
    plan = AshaStrategy(9, 3, eta=3, direction="max")
    handed, _ = simulate(plan, 1, lambda p: float(p.index))
    assert max(p.index for p in handed if p.rung == 0) == 8
    assert 8 in {p.index for p in handed if p.epochs == 3}


@settings(max_examples=80, deadline=None)
@given(**budgeted)
def test_property_hyperband_deals_each_combination_to_one_bracket_once(
    size, epochs, eta, min_epochs, workers, seed, failing
):
    score, values, fails = _scores(seed, size, failing)
    plan = HyperbandStrategy(size, epochs, eta=eta, min_epochs=min_epochs, seed=seed)
    budgets = ladder(epochs, eta, min_epochs)
    firsts = [b.budgets[0] for b in plan.brackets]
    assert firsts == sorted(set(firsts)) and set(firsts) <= set(budgets)  # aggressive first
    assert all(b.budgets == budgets[budgets.index(b.budgets[0]):] for b in plan.brackets)
    dealt = [i for b in plan.brackets for i in b._queue]
    assert sorted(dealt) == list(range(size))  # a partition of the grid
    handed, told = simulate(plan, workers, score)
    full = check_accounts(plan, handed, told, size, epochs)
    for bracket in plan.brackets:  # each bracket's best goes the distance
        ok = [i for i in bracket._queue if i not in fails]
        if ok:
            assert min(ok, key=lambda i: values[i]) in full
    assert {p.epochs for p in handed} <= set(budgets)


def test_hyperband_brackets_on_seed_48_at_9_epochs():
    plan = HyperbandStrategy(48, 9, eta=3, seed=0)
    assert [b.budgets for b in plan.brackets] == [(1, 3, 9), (3, 9), (9,)]
    assert [b.total for b in plan.brackets] == [25, 14, 9]  # 48 dealt as 9 : 5 : 3
    handed, _ = simulate(plan, 1, lambda p: float(p.index))
    spent = sum(p.epochs - p.start_epoch for p in handed)
    assert spent <= 0.5 * 48 * 9
    other = HyperbandStrategy(48, 9, eta=3, seed=1)
    assert [b._queue for b in other.brackets] != [b._queue for b in plan.brackets]


def test_hyperband_min_epochs_bounds_the_first_budget_and_one_bracket_is_halving():
    assert [b.budgets for b in HyperbandStrategy(20, 27, min_epochs=3).brackets] == [(3, 9, 27), (9, 27), (27,)]
    single = HyperbandStrategy(6, 3, min_epochs=3)
    assert [b.budgets for b in single.brackets] == [(3,)] and single.total == 6


def test_hyperband_fills_free_workers_from_the_next_bracket_and_numbers_rungs_apart():
    plan = HyperbandStrategy(6, 3, eta=3, seed=0)  # brackets (1, 3) with 4 and (3,) with 2
    first = [plan.ask() for _ in range(6)]
    assert [p.rung for p in first] == [0, 0, 0, 0, 2, 2] and [p.epochs for p in first] == [1] * 4 + [3] * 2
    assert plan.ask() is Decision.WAIT
    assert plan.rung_size(0) == 4 and plan.rung_size(2) == 2
    for p in first:
        plan.tell(p, float(p.index))
    promoted = plan.ask()
    assert promoted.rung == 1 and promoted.epochs == 3 and promoted.start_epoch == 1
    lines = [str(o) for o in plan.take_outcomes()]
    assert lines[0].startswith("Bracket 1 of 2: Rung 1 (1 epoch): 4 trained; promoted 1 to 3 epochs")
    assert lines[1].startswith("Bracket 2 of 2: Rung 1 (3 epochs): 2 trained; done; best trial ")


def test_budget_options_are_checked_in_every_budgeted_strategy():
    for name in ("halving", "asha", "hyperband"):
        make_strategy(name, size=4, epochs=3, max_trials=None, seed=0)
        assert SearchSettings(strategy=name).continues  # the engine keeps checkpoints for it
        with pytest.raises(ValueError, match=r"eta must be an integer of at least 2 \(got eta=1\)"):
            make_strategy(name, size=4, epochs=3, max_trials=None, seed=0, eta=1)
        with pytest.raises(ValueError, match=r"min_epochs must be a positive integer \(got min_epochs=0\)"):
            make_strategy(name, size=4, epochs=3, max_trials=None, seed=0, min_epochs=0)
    assert not SearchSettings(strategy="grid").continues


def test_hyperband_max_trials_deals_a_seeded_sample():
    a = HyperbandStrategy(10**9, 9, max_trials=17, seed=3)
    b = HyperbandStrategy(10**9, 9, max_trials=17, seed=3)
    assert [x._queue for x in a.brackets] == [x._queue for x in b.brackets]
    assert [x.total for x in a.brackets] == [9, 5, 3] and a.total == 17  # the paper's n_s exactly
    handed, _ = simulate(a, 3, lambda p: float(p.index % 11))
    assert len({p.index for p in handed}) == 17 and max(p.index for p in handed) > 17
