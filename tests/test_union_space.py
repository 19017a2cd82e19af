"""Grids that are not one product: a list of sub-grids and ``where=``, without TensorFlow.

The space's order, size and indexing; what is refused when decorated (and when counted);
the cap; the fingerprint; ``gridspec plan``; random draws over a union.
"""

from __future__ import annotations

import collections
import itertools
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gridspec as gs
from gridspec.cli import main
from gridspec.fingerprint import describe_changes, search_fingerprint
from gridspec.space import Space
from gridspec.strategies import Proposal, make_strategy
from gridspec.union import UnionSpace

from conftest import batches


@gs.grid([dict(opt=["adam"], lr=[1e-3, 1e-4]), dict(opt=["sgd"], lr=[1e-2], momentum=[0.0, 0.9])])
def optimizers(opt, lr, momentum=0.0):
    return (opt, lr, momentum)


# -- the space ---------------------------------------------------------------------------------
def test_a_list_of_grids_is_their_products_in_order():
    space = optimizers.space
    assert list(space) == [
        {"opt": "adam", "lr": 0.001}, {"opt": "adam", "lr": 0.0001},
        {"opt": "sgd", "lr": 0.01, "momentum": 0.0}, {"opt": "sgd", "lr": 0.01, "momentum": 0.9},
    ]
    assert len(space) == 4 and space[-1] == space[3] == {"opt": "sgd", "lr": 0.01, "momentum": 0.9}
    assert [space.index(p) for p in space] == [0, 1, 2, 3]
    assert space.describe() == "opt (1) x lr (2) = 2 | opt (1) x lr (1) x momentum (2) = 2; 4 combinations"
    assert "4 combinations" in repr(optimizers)
    assert space.names == ("opt", "lr", "momentum")
    assert [(a.name, a.values) for a in space.axes] == [
        ("opt", ("adam", "sgd")), ("lr", (0.001, 0.0001, 0.01)), ("momentum", (0.0, 0.9))]
    # a combination is found in the sub-grid with exactly its axes, not in one holding them all
    with pytest.raises(KeyError, match="is not a combination of this space"):
        space.index({"opt": "adam", "lr": 0.001, "momentum": 0.0})
    with pytest.raises(IndexError):
        space[4]
    assert optimizers(opt="sgd", lr=0.1) == ("sgd", 0.1, 0.0)  # still the function


def test_a_list_of_one_grid_or_a_dict_is_the_keyword_form():
    keywords = gs.grid(lr=[0.1, 0.01], act=["relu"])(_takes_all).space
    assert gs.grid([dict(lr=[0.1, 0.01], act=["relu"])])(_takes_all).space == keywords
    assert gs.grid(dict(lr=[0.1, 0.01], act=["relu"]))(_takes_all).space == keywords
    assert isinstance(keywords, Space)


def test_where_keeps_what_it_accepts_counted_once_lazily():
    calls = []

    def keep(p):
        calls.append(dict(p))
        return p["opt"] == "sgd" or p["momentum"] == 0.0

    @gs.grid(opt=["adam", "sgd"], momentum=[0.0, 0.9], where=keep)
    def build(opt, momentum):
        pass

    assert calls == []  # decorating asks nothing: the pass is made when first needed
    assert "before where=" in repr(build) and calls == []
    space = build.space
    assert next(iter(space)) == {"opt": "adam", "momentum": 0.0} and len(calls) == 1  # asked as they come
    assert len(space) == 3 and len(calls) == 1 + 4  # then one pass
    assert list(space) == [{"opt": "adam", "momentum": 0.0}, {"opt": "sgd", "momentum": 0.0},
                           {"opt": "sgd", "momentum": 0.9}]
    assert [space[i] for i in range(3)] == list(space) and space[-1] == {"opt": "sgd", "momentum": 0.9}
    assert space.index({"opt": "sgd", "momentum": 0.9}) == 2
    with pytest.raises(KeyError):
        space.index({"opt": "adam", "momentum": 0.9})  # rejected by where=
    assert space.describe() == "opt (2) x momentum (2) = 4; where= keeps 3 of 4 combinations"
    assert len(calls) == 5  # counted once


def test_where_applies_to_every_sub_grid():
    @gs.grid([dict(units=[1, 2, 3]), dict(units=[4, 5], depth=[1, 2])], where=lambda p: (p["units"] + p.get("depth", 0)) % 2)
    def build(units, depth=0):
        pass

    assert list(build.space) == [{"units": 1}, {"units": 3}, {"units": 4, "depth": 1}, {"units": 5, "depth": 2}]
    assert build.space.describe() == "units (3) = 3 | units (2) x depth (2) = 4; where= keeps 4 of 7 combinations"


def _union(lengths: list[list[int]]) -> tuple[list[dict], UnionSpace]:
    grids = [{f"a{i}": list(range(n)) for i, n in enumerate(part)} | {"part": [k]} for k, part in enumerate(lengths)]
    expected = [dict(zip(g, values)) for g in grids for values in itertools.product(*g.values())]
    return expected, UnionSpace([Space.from_dict(g) for g in grids])


PARTS = st.lists(st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=3), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(PARTS)
def test_property_a_union_is_its_parts_in_order_and_every_index_round_trips(lengths):
    expected, space = _union(lengths)
    assert len(space) == sum(len(list(itertools.product(*(range(n) for n in part)))) for part in lengths)
    assert list(space) == expected == [space[i] for i in range(len(space))]
    for i, params in enumerate(expected):
        assert space.index(params) == i and space[i - len(space)] == params


@settings(max_examples=60, deadline=None)
@given(PARTS, st.integers(min_value=2, max_value=5), st.integers(min_value=0, max_value=4))
def test_property_where_keeps_the_accepted_in_order_and_indices_round_trip(lengths, modulus, remainder):
    expected, plain = _union(lengths)
    accept = (lambda p: sum(p.values()) % modulus != remainder)
    kept = [p for p in expected if accept(p)]
    if not kept:
        return  # refused: tested on its own
    space = UnionSpace(plain.parts, accept)
    assert len(space) == len(kept) and list(space) == kept == [space[i] for i in range(len(kept))]
    assert [space.index(p) for p in kept] == list(range(len(kept)))


def test_where_over_many_blocks_selects_and_ranks_exactly():
    space = gs.grid(a=range(300), b=range(300), where=lambda p: (p["a"] * 7 + p["b"]) % 11 == 3)(lambda a, b: 0).space
    kept = [p for p in ({"a": a, "b": b} for a in range(300) for b in range(300)) if (p["a"] * 7 + p["b"]) % 11 == 3]
    assert len(space) == len(kept)
    for i in [0, 1, 4095, 4096, 5000, len(kept) // 2, len(kept) - 1]:
        assert space[i] == kept[i] and space.index(kept[i]) == i


def test_a_union_of_huge_products_is_never_materialised():
    space = gs.grid([{f"a{i}": range(10) for i in range(8)}, {f"b{i}": range(10) for i in range(8)}])(lambda **kw: 0).space
    assert len(space) == 2 * 10**8
    assert space[10**8] == {f"b{i}": 0 for i in range(8)}
    assert space.index(space[123_456_789]) == 123_456_789
    assert sys.getsizeof(space) < 1000


def test_random_draws_uniformly_over_the_union():
    space = gs.grid([dict(a=range(10)), dict(b=range(30))])(lambda a=0, b=0: 0).space
    counts = collections.Counter()
    for seed in range(400):
        plan = make_strategy("random", size=len(space), epochs=1, max_trials=4, seed=seed)
        while isinstance(proposal := plan.ask(), Proposal):
            counts["a" in space[proposal.index]] += 1
            plan.tell(proposal, 0.0)
    assert sum(counts.values()) == 1600
    assert counts[True] / 1600 == pytest.approx(0.25, abs=0.04)  # 10 of the 40 combinations


# -- refused when decorated (and when counted) ---------------------------------------------------
def _takes_all(opt="adam", lr=0.1, momentum=0.0, units=1):
    return None


DECORATION_CASES = [
    ("required axis left out of a sub-grid",
     lambda: gs.grid([dict(opt=["adam"]), dict(opt=["sgd"], momentum=[0.9])])(lambda opt, momentum: 0),
     ["parameter 'momentum' with no default", "sub-grid 1 (opt) has no axis 'momentum'", "give momentum a default"]),
    ("a combination in two sub-grids",
     lambda: gs.grid([dict(opt=["adam", "sgd"], lr=[0.1, 0.01]), dict(lr=[0.5, 0.01], opt=["sgd"])])(_takes_all),
     ["the combination {'lr': 0.01, 'opt': 'sgd'} is in sub-grid 1 (opt, lr) and sub-grid 2 (lr, opt)", "train twice"]),
    ("empty axis in a sub-grid", lambda: gs.grid([dict(opt=["adam"]), dict(lr=[])])(_takes_all),
     ["sub-grid 2: grid axis 'lr' is empty"]),
    ("string axis in a sub-grid", lambda: gs.grid([dict(opt="adam")])(_takes_all),
     ["sub-grid 1: grid axis 'opt' must be a list", "opt=['adam']"]),
    ("set axis in a sub-grid", lambda: gs.grid([dict(lr=[1]), dict(opt={"sgd"})])(_takes_all),
     ["sub-grid 2: grid axis 'opt' must be an ordered list", "not a set"]),
    ("duplicate value in a sub-grid", lambda: gs.grid([dict(lr=[0.1, 0.1])])(_takes_all),
     ["sub-grid 1: grid axis 'lr' lists the value 0.1 twice"]),
    ("a sub-grid without axes", lambda: gs.grid([dict(lr=[1]), {}])(_takes_all), ["sub-grid 2 has no axes"]),
    ("an empty list", lambda: gs.grid([])(_takes_all), ["@grid([]) needs at least one grid"]),
    ("not a dict", lambda: gs.grid([dict(lr=[1]), [0.1]])(_takes_all), ["list of dicts of axes", "item 2 is a list"]),
    ("a list and keywords", lambda: gs.grid([dict(lr=[1])], units=[1])(_takes_all), ["not both"]),
    ("a positional value", lambda: gs.grid(0.1)(_takes_all), ["as keywords", "list of dicts", "got a positional argument: 0.1"]),
    ("where as an axis", lambda: gs.grid(lr=[1], where=[1, 2])(_takes_all),
     ["@grid(where=...) takes a predicate", "(got a list)", "'where' is reserved"]),
    ("where in a sub-grid", lambda: gs.grid([dict(lr=[1], where=[2])])(_takes_all), ["axis named 'where', which is reserved"]),
]


@pytest.mark.parametrize("case, make, phrases", DECORATION_CASES, ids=[c[0] for c in DECORATION_CASES])
def test_decoration_errors_name_the_sub_grid(case, make, phrases):
    with pytest.raises(gs.GridError) as info:
        make()
    assert isinstance(info.value, gs.GridSpecError) and isinstance(info.value, TypeError)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_an_exception_in_where_names_the_combination():
    space = gs.grid([dict(opt=["adam"]), dict(opt=["sgd"], momentum=[0.9])],
                    where=lambda p: p["momentum"] > 0)(_takes_all).space
    with pytest.raises(gs.GridError) as info:
        len(space)
    message = str(info.value)
    assert "where= raised KeyError: 'momentum' for the combination {'opt': 'adam'} of sub-grid 1 (opt)" in message
    assert "use p.get('momentum')" in message
    with pytest.raises(gs.GridError, match=r"where= raised ZeroDivisionError: division by zero for the combination \{'lr': 0\}"):
        gs.grid(lr=[1, 0], where=lambda p: 1 / p["lr"])(_takes_all).space[0]


def test_where_refuses_a_repeat_it_keeps_and_allows_one_it_rejects():
    overlapping = [dict(opt=["adam", "sgd"], momentum=[0.0]), dict(opt=["sgd"], momentum=[0.0, 0.9])]
    kept = gs.grid(overlapping, where=lambda p: p["opt"] == "sgd")(_takes_all).space
    with pytest.raises(gs.GridError, match=r"the combination \{'opt': 'sgd', 'momentum': 0\.0\} is in sub-grid 1 .* and sub-grid 2"):
        len(kept)
    rejected = gs.grid(overlapping, where=lambda p: p["opt"] == "adam" or p["momentum"] == 0.9)(_takes_all).space
    assert list(rejected) == [{"opt": "adam", "momentum": 0.0}, {"opt": "sgd", "momentum": 0.9}]


def test_where_that_keeps_nothing_is_refused():
    with pytest.raises(gs.GridError, match=r"where= keeps none of the 2 combinations \(lr \(2\) = 2\)"):
        len(gs.grid(lr=[1, 2], where=lambda p: p["lr"] > 5)(_takes_all).space)


def test_a_data_factory_parameter_left_out_of_a_sub_grid_is_refused():
    @gs.grid([dict(units=[1], batch_size=[8]), dict(units=[2])])
    def build(units):
        pass

    def train(batch_size):
        yield from batches(0, 2, size=batch_size)

    with pytest.raises(gs.GridError, match=r"parameter 'batch_size' with no default, and sub-grid 2 \(units\) has no axis 'batch_size'"):
        build.search(train=train, val=None, steps_per_epoch=1)


# -- the cap -----------------------------------------------------------------------------------------
def test_a_union_over_the_cap_is_one_product_of_that_size():
    @gs.grid([dict(a=range(600_000)), dict(b=range(600_000))])
    def build(a=0, b=0):
        pass

    with pytest.raises(gs.GridSpecError) as info:
        build.search(train=lambda: batches(0, 1), val=None, steps_per_epoch=1)
    message = str(info.value)
    assert "has a grid of 1,200,000 combinations (a (600000) = 600,000 | b (600000) = 600,000" in message
    assert "needs max_trials=N" in message


def test_where_over_the_cap_needs_max_trials_without_counting():
    calls = []

    @gs.grid(a=range(1001), b=range(1000), where=lambda p: calls.append(1) or True)
    def build(a, b):
        pass

    with pytest.raises(gs.GridSpecError, match=r"1,001,000 combinations \(a \(1001\) x b \(1000\) = 1,001,000; 1,001,000 combinations before where=\); "
                       r"counting what where= keeps is a pass over them all, and more than 1,000,000 needs max_trials=N"):
        build.search(train=lambda: batches(0, 1), val=None, steps_per_epoch=1)
    assert calls == []  # refused before any pass
    assert build.space.describe() == "a (1001) x b (1000) = 1,001,000; 1,001,000 combinations before where="


# -- the fingerprint ---------------------------------------------------------------------------------
def _fingerprint(space):
    return search_fingerprint([(a.name, a.values) for a in space.axes], _takes_all, None, None, {},
                              grids=[[(a.name, a.values) for a in p.axes] for p in space.parts], where=space.where)


def test_the_fingerprint_of_one_product_is_unchanged_and_a_union_covers_sub_grids_and_where():
    space = gs.grid(lr=[0.1, 0.01])(_takes_all).space
    assert _fingerprint(space) == search_fingerprint([("lr", (0.1, 0.01))], _takes_all, None, None, {})
    assert set(_fingerprint(space).parts) == {"axes", "model", "train", "val", "settings"}

    before = _fingerprint(optimizers.space)
    changed = _fingerprint(gs.grid([dict(opt=["adam"], lr=[1e-3, 1e-4]), dict(opt=["sgd"], lr=[1e-2], momentum=[0.0, 0.5])])(_takes_all).space)
    assert changed != before
    assert describe_changes(before.parts, changed.parts) == ["sub-grid 2's axis 'momentum' changed from [0.0, 0.9] to [0.0, 0.5]"]
    moved = _fingerprint(gs.grid([dict(opt=["adam"], lr=[1e-3]), dict(opt=["sgd"], lr=[1e-4, 1e-2], momentum=[0.0, 0.9])])(_takes_all).space)
    assert moved != before  # the same merged axes, split otherwise

    def keep(p):
        return p["lr"] > 0

    def keep_more(p):
        return p["lr"] >= 0

    one = _fingerprint(gs.grid(lr=[0.1], where=keep)(_takes_all).space)
    other = _fingerprint(gs.grid(lr=[0.1], where=keep_more)(_takes_all).space)
    assert one != other
    assert any(c.startswith("the where= predicate changed from ") for c in describe_changes(one.parts, other.parts))
    assert describe_changes(_fingerprint(gs.grid(lr=[0.1])(_takes_all).space).parts, one.parts) == [
        "the where= predicate changed from none to " + one.parts["where"]["name"]]
    assert describe_changes(_fingerprint(space).parts, before.parts)[0] == (
        "the grid changed from one product (lr) to 2 sub-grids (opt, lr | opt, lr, momentum)")


# -- gridspec plan ------------------------------------------------------------------------------------
def test_plan_shows_the_count_and_the_sub_grids(write_module, capsys):
    path = write_module(
        "import gridspec as gs\n\n"
        "@gs.grid([dict(opt=['adam'], lr=[1e-3, 1e-4]), dict(opt=['sgd'], lr=[1e-2], momentum=[0.0, 0.9])],\n"
        "         where=lambda p: p['lr'] != 1e-4)\n"
        "def build(opt, lr, momentum=0.0):\n    pass\n\n"
        "@gs.grid(a=range(1001), b=range(1000), where=lambda p: p['b'] % 2)\n"
        "def huge(a, b):\n    pass\n")
    assert main(["plan", f"{path}:build"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "build: opt (1) x lr (2) = 2 | opt (1) x lr (1) x momentum (2) = 2; where= keeps 3 of 4 combinations",
        "  sub-grid 1: opt (1) x lr (2) = 2: opt=['adam'], lr=[0.001, 0.0001]",
        "  sub-grid 2: opt (1) x lr (1) x momentum (2) = 2: opt=['sgd'], lr=[0.01], momentum=[0.0, 0.9]",
        "1 {'opt': 'adam', 'lr': 0.001}",
        "2 {'opt': 'sgd', 'lr': 0.01, 'momentum': 0.0}",
        "3 {'opt': 'sgd', 'lr': 0.01, 'momentum': 0.9}",
    ]
    assert main(["plan", f"{path}:huge", "--limit", "2"]) == 0  # no pass over a million combinations
    assert capsys.readouterr().out.splitlines() == [
        "huge: a (1001) x b (1000) = 1,001,000; 1,001,000 combinations before where=",
        "      1 {'a': 0, 'b': 1}",
        "      2 {'a': 0, 'b': 3}",
        "… and more (where= is counted when a search runs; --limit 0 lists them all)",
    ]


# -- absent is not None ---------------------------------------------------------------------------------
def test_an_absent_axis_is_not_the_value_none_in_effects_and_plots():
    from gridspec.plot import draw
    from gridspec.result import SearchResult, Trial, TrialStatus

    def done(number, score, **params):
        return Trial(number=number, params=params, status=TrialStatus.COMPLETE, score=score, best_epoch=1, epochs=1,
                     history={"loss": (score,)})

    result = SearchResult(trials=(done(1, 0.1, opt="adam"), done(2, 0.5, opt="sgd", clip=None),
                                  done(3, 0.3, opt="sgd", clip=1.0)),
                          objective="loss", direction="min", axes=("opt", "clip"))
    clip = result.effects()["clip"]
    assert [(v.value, v.count, v.mean) for v in clip.values] == [(None, 1, 0.5), (1.0, 1, 0.3)]
    assert (clip.count, clip.absent) == (2, 1)
    figure = draw(result)
    panel = next(ax for ax in figure.axes if ax.get_title().startswith("clip"))
    dots = [list(c.get_offsets()[:, 1]) for c in panel.collections if len(c.get_offsets())]
    assert dots[0] == [0.5]  # the value None: trial 2 alone, not the Adam trial without the axis
    assert not any(0.1 in d for d in dots)
