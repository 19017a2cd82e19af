"""Searches over a list of grids and ``where=``, with real (tiny) Keras training.

Each sub-grid's trials get only its axes (the function's default for the others); trial
numbers are positions in the union; the strategies, fused groups (equal to ``fuse=1``, the
oracle), the journal, the exports, effects, TensorBoard and plots all take absent axes; and
the command line runs the example.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import linecache
import os
import re
import shlex
import sys
import textwrap
from pathlib import Path

import keras
import pytest

import gridspec as gs
from gridspec.errors import JournalError
from gridspec.progress import Note
from gridspec.registry import load_module

from conftest import ROOT, batches, run_cli

CALLS: list[tuple] = []


def train():
    yield from batches(seed=1, count=3)


def val():
    yield from batches(seed=2, count=2)


SEARCH = dict(epochs=2, steps_per_epoch=3, validation_steps=2, train=train, val=val)


def tiny(opt: str, lr: float, momentum: float = 0.0) -> keras.Model:
    optimizer = keras.optimizers.Adam(lr) if opt == "adam" else keras.optimizers.SGD(lr, momentum=momentum)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


@gs.grid([dict(opt=["adam"], lr=[0.01, 0.001]), dict(opt=["sgd"], lr=[0.05], momentum=[0.0, 0.9])])
def union(opt, lr, momentum=None):
    CALLS.append((opt, lr, momentum))
    return tiny(opt, lr, 0.0 if momentum is None else momentum)


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The union searched one trial at a time (the oracle), with TensorBoard logs."""
    CALLS.clear()
    logs = str(tmp_path_factory.mktemp("union") / "logs")
    result = union.search(**SEARCH, fuse=1, tensorboard_dir=logs)
    return result, list(CALLS), logs


def test_each_sub_grid_trains_with_only_its_axes(alone):
    result, calls, _ = alone
    assert calls == [("adam", 0.01, None), ("adam", 0.001, None), ("sgd", 0.05, 0.0), ("sgd", 0.05, 0.9)]
    assert [t.number for t in result.trials] == [1, 2, 3, 4]
    assert [dict(t.params) for t in result.trials] == list(union.space)
    assert result.axes == ("opt", "lr", "momentum") and len(result.completed) == 4
    for line in result.leaderboard().splitlines()[1:]:  # only the axes a trial has
        number = int(line.split()[1])
        assert ("momentum=" in line) == (number >= 3), line


def test_exports_leave_an_absent_axis_empty_in_csv_and_null_in_json(alone):
    result, _, _ = alone
    records = result.to_records()
    assert [r["param_momentum"] for r in records] == [None, None, 0.0, 0.9]
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["param_momentum"] for r in rows] == ["", "", "0.0", "0.9"]
    assert [r["param_opt"] for r in rows] == ["adam", "adam", "sgd", "sgd"]
    data = json.loads(result.to_json())
    assert [t["params"] for t in data["trials"]][::3] == [
        {"opt": "adam", "lr": 0.01, "momentum": None}, {"opt": "sgd", "lr": 0.05, "momentum": 0.9}]


def test_effects_summarise_an_axis_over_the_trials_that_have_it(alone):
    result, _, _ = alone
    effects = result.effects()
    momentum = effects["momentum"]
    assert [(v.value, v.count) for v in momentum.values] == [(0.0, 1), (0.9, 1)]
    assert (momentum.count, momentum.absent) == (2, 2)
    sgd = [t for t in result.trials if t.params["opt"] == "sgd"]
    assert momentum.values[1].mean == pytest.approx(sgd[1].score)
    assert [(v.value, v.count) for v in effects["opt"].values] == [("adam", 2), ("sgd", 2)]
    assert effects["opt"].absent == 0
    assert "momentum: spread" in str(effects) and "(over the n=2 trials that have it; 2 leave it out)" in str(effects)


def test_tensorboard_hparams_and_the_plot_take_absent_values(alone, tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    result, _, logs = alone

    def records(run: str) -> list:
        out = []
        for path in sorted(glob.glob(os.path.join(logs, run, "events.out.tfevents.*"))):
            for event in LegacyEventFileLoader(path).Load():
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name == "hparams":
                        out.append(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
        return out

    assert sorted(r for r in os.listdir(logs) if r.startswith("trial-")) == [f"trial-000{n}" for n in (1, 2, 3, 4)]
    (experiment,) = [r.experiment for r in records("trial-0001") if r.HasField("experiment")]
    assert [h.name for h in experiment.hparam_infos] == ["opt", "lr", "momentum"]
    momentum = next(h for h in experiment.hparam_infos if h.name == "momentum")
    assert sorted(v.number_value for v in momentum.domain_discrete.values) == [0.0, 0.9]
    (adam,) = [r.session_start_info for r in records("trial-0001") if r.HasField("session_start_info")]
    assert set(adam.hparams) == {"opt", "lr"}
    (sgd,) = [r.session_start_info for r in records("trial-0004") if r.HasField("session_start_info")]
    assert sgd.hparams["momentum"].number_value == pytest.approx(0.9)

    path = result.plot(str(tmp_path / "union.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fused_union_equals_one_trial_at_a_time(alone):
    oracle, _, _ = alone
    fused = union.search(**SEARCH)
    assert any(t.fused_with for t in fused.trials)  # Adam and SGD members trained together
    assert [t.number for t in fused.trials] == [t.number for t in oracle.trials]
    for f, a in zip(fused.trials, oracle.trials):
        assert f.params == a.params and f.status is a.status and f.best_epoch == a.best_epoch
        for key in a.history:
            assert f.history[key] == pytest.approx(a.history[key], rel=1e-5, abs=1e-7), (f.number, key)


@gs.grid([dict(opt=["adam"], lr=[0.02, 0.01, 0.005]), dict(opt=["sgd"], lr=[0.1, 0.05], momentum=[0.0, 0.5, 0.9])],
         where=lambda p: p.get("momentum") != 0.5)
def kept(opt, lr, momentum=0.0):
    return tiny(opt, lr, momentum)


@pytest.mark.parametrize("strategy, options", [
    ("random", {"max_trials": 3, "seed": 4}),
    ("halving", {"epochs": 3}),
    ("asha", {"epochs": 3}),
    ("hyperband", {"epochs": 3}),
])
def test_every_strategy_works_on_the_kept_indices(strategy, options):
    space = kept.space
    assert len(space) == 7 and space.product_size == 9
    result = kept.search(**{**SEARCH, "strategy": strategy, **options})
    numbers = [t.number for t in result.trials]
    assert numbers and set(numbers) <= set(range(1, 8))
    assert len(numbers) == (3 if strategy == "random" else 7)
    for t in result.trials:
        assert dict(t.params) == space[t.number - 1] and t.params.get("momentum") != 0.5
    assert result.completed


def test_a_sub_grid_without_the_epochs_axis_trains_the_searchs_epochs():
    @gs.grid([dict(units=[2], epochs=[1, 2]), dict(units=[3])])
    def build(units):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    result = build.search(**{**SEARCH, "epochs": 3})
    assert [(t.params.get("epochs"), t.epochs) for t in result.trials] == [(1, 1), (2, 2), (None, 3)]


def test_a_union_over_the_cap_trains_with_max_trials_drawn_over_the_whole_union():
    @gs.grid([dict(a=range(600_000)), dict(b=range(600_000))])
    def build(a=0, b=0):
        return tiny("sgd", 0.01)

    result = build.search(**SEARCH, strategy="random", max_trials=2, seed=3)
    assert len(result.trials) == 2
    for t in result.trials:
        assert dict(t.params) == build.space[t.number - 1]


# -- the journal ---------------------------------------------------------------------------------
MODULE = '''
import numpy as np
import keras
import gridspec as gs

BUILDS = []

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

@gs.grid([dict(opt=["adam"], lr=[0.01]), dict(opt=["sgd"], lr=[0.05], momentum=[0.0, 0.9])],
         where=lambda p: p.get("momentum", 0.0) < 1.0)
def build(opt, lr, momentum=0.0):
    BUILDS.append((opt, momentum))
    optimizer = keras.optimizers.Adam(lr) if opt == "adam" else keras.optimizers.SGD(lr, momentum=momentum)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model
'''


def load_fresh(path: Path, text: str):
    path.write_text(textwrap.dedent(text))
    sys.modules.pop(path.stem, None)
    linecache.clearcache()
    return load_module(str(path))


@pytest.mark.parametrize("edit, expected", [
    (("< 1.0", "< 0.5"), "the source of the where= predicate models_u.<lambda>() changed; first difference: "),
    (("momentum=[0.0, 0.9]", "momentum=[0.0, 0.5]"), "sub-grid 2's axis 'momentum' changed from [0.0, 0.9] to [0.0, 0.5]"),
])
def test_resume_and_a_changed_sub_grid_or_predicate(tmp_path: Path, edit, expected) -> None:
    storage = str(tmp_path / "s.sqlite")
    module = load_fresh(tmp_path / "models_u.py", MODULE)
    first = module.build.search(epochs=1, steps_per_epoch=2, storage=storage)
    assert len(module.BUILDS) == 3
    module.BUILDS.clear()
    events: list = []
    again = module.build.search(epochs=1, steps_per_epoch=2, storage=storage, verbose=events.append)
    assert module.BUILDS == [] and again.trials == first.trials
    assert f"resumed: 3 of 3 trials already complete in {storage}" in [e.text for e in events if isinstance(e, Note)]

    changed = load_fresh(tmp_path / "models_u.py", MODULE.replace(*edit))
    with pytest.raises(JournalError) as info:
        changed.build.search(epochs=1, steps_per_epoch=2, storage=storage)
    assert expected in str(info.value) and changed.BUILDS == []


# -- the command line ------------------------------------------------------------------------------
def test_cli_plans_and_runs_the_union_example(tmp_path):
    example = ROOT / "examples" / "optimizers_union.py"
    plan = run_cli("plan", f"{example}:build")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[:3] == [
        "build: opt (1) x lr (2) = 2 | opt (1) x lr (2) x momentum (2) = 4; 6 combinations",
        "  sub-grid 1: opt (1) x lr (2) = 2: opt=['adam'], lr=[0.003, 0.001]",
        "  sub-grid 2: opt (1) x lr (2) x momentum (2) = 4: opt=['sgd'], lr=[0.03, 0.01], momentum=[0.0, 0.9]",
    ]
    # the command the example's docstring gives, with the exports
    command = re.search(r"Run it with:\s+(gridspec run .+)", example.read_text()).group(1)
    args = shlex.split(command)[1:]
    done = run_cli(*args, "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("Model ")]
    assert [line.split("...")[0] for line in lines] == [f"Model {i} of 6" for i in range(1, 7)]
    assert "{'opt': 'adam', 'lr': 0.003}" in lines[0] and "momentum" not in lines[0]
    assert "(over the n=4 trials that have it; 2 leave it out)" in done.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["param_momentum"] for r in rows] == ["", "", "0.0", "0.9", "0.0", "0.9"]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trials"][0]["params"] == {"opt": "adam", "lr": 0.003, "momentum": None}
    assert data["axes"] == ["opt", "lr", "momentum"]
