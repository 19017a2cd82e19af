"""The wiring: one settings object, ``search()`` in phases, records truly frozen, the import rule.

Each test here reproduces a defect found in 0.1: a leftover halving folder, a
phantom search in the journal, a journal lock held by a kept exception, raw errors from
settings, a traceback for a missing extra, ``refit`` dropping ``distribute``, mutable
"frozen" records.
"""

from __future__ import annotations

import ast
import concurrent.futures
import inspect
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import keras
import numpy as np
import pytest

import gridspec as gs
from gridspec.loop import _Loop
from gridspec.executors.base import Executor
from gridspec.journal import load
from gridspec.result import Trial, TrialStatus
from gridspec.settings import SearchSettings
from gridspec.strategies import Decision, GridStrategy, Proposal
from gridspec.strategies.base import StrategyBase
from gridspec.strategies.halving import HalvingStrategy

from conftest import ROOT, batches

PACKAGE = ROOT / "gridspec"


def train():
    yield from batches(seed=1, count=3)


def val():
    yield from batches(seed=2, count=2)


@gs.grid(act=["tanh", "relu"])
def build(act):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def broken_train():
    raise RuntimeError("disk on fire")
    yield  # pragma: no cover


SMALL = {"steps_per_epoch": 2, "validation_steps": 1, "train": train, "val": val}


# -- resources: nothing created before the last refusal, everything closed ---------------------
def test_a_halving_search_whose_data_fails_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDSPEC_CHECKPOINT_DIR", str(tmp_path))
    for _ in range(2):
        with pytest.raises(gs.DataError, match="disk on fire"):
            build.search(strategy="halving", epochs=3, steps_per_epoch=2, train=broken_train, val=None)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_search_records_no_search_in_the_journal(tmp_path):
    path = tmp_path / "j.db"
    with pytest.raises(gs.GridSpecError, match="can't be sent to worker processes"):
        build.search(workers=2, storage=str(path), steps_per_epoch=2, train=lambda: batches(1, 3), val=None)
    assert not path.exists()  # nothing was opened: the refusal came first
    result = build.search(storage=str(path), **SMALL)  # and the next attempt is a new search
    assert len(result.completed) == 2 and load(str(path)).id == 1


def test_the_journal_lock_is_released_when_search_raises_and_the_exception_is_kept(tmp_path):
    @gs.grid(act=["tanh"])
    def uncompiled(act):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])

    path = str(tmp_path / "j.db")
    kept = []
    try:
        uncompiled.search(storage=path, **SMALL)
    except gs.GridSpecError as exc:
        kept.append(exc)  # a notebook keeps the exception (and its traceback's frames) alive
    assert kept and "not compiled" in str(kept[0])
    uncompiled_again = build.search(storage=str(tmp_path / "j.db"), resume=False, **SMALL)
    assert len(uncompiled_again.completed) == 2


# -- settings: one object, one validator per field -----------------------------------------------
@pytest.mark.parametrize("settings, phrases", [
    ({"cache_data": "1GB"}, ["cache_data must be True", "a number of bytes", "got cache_data='1GB'"]),
    ({"callbacks": 5}, ["callbacks must be a list of Keras callbacks", "got callbacks=5"]),
    ({"callbacks": [5]}, ["callbacks must hold Keras callbacks", "5 is a int"]),
    ({"epochs": 0}, ["epochs must be a positive integer", "got epochs=0"]),
    ({"fuse": 0}, ["fuse must be 'auto'", "got fuse=0"]),
    ({"fuse": "max"}, ["fuse must be 'auto'", "got fuse='max'"]),
    ({"eta": 3}, ["eta= tunes successive halving", "strategy='halving'"]),
    ({"address": "auto"}, ["address= tunes the Ray executor", "executor='ray'"]),
    ({"verbose": "loud"}, ["verbose must be 0", "got verbose='loud'"]),
])
def test_bad_settings_are_refused_with_their_name(settings, phrases):
    with pytest.raises(gs.GridSpecError) as info:
        build.search(**SMALL, **settings)
    for phrase in phrases:
        assert phrase in str(info.value)


@pytest.mark.parametrize("misspelt, meant", [("epoch", "epochs"), ("stratgy", "strategy"),
                                             ("tensorboard", "tensorboard_dir")])
def test_a_misspelt_setting_gets_did_you_mean_in_search_and_build_search(misspelt, meant):
    expected = rf"unknown setting {misspelt}=3; did you mean '{meant}'\?"
    with pytest.raises(gs.GridSpecError, match=expected):
        gs.engine.search(build, **{misspelt: 3})
    with pytest.raises(gs.GridSpecError, match=expected):  # not Python's bare TypeError
        build.search(**{misspelt: 3})


def test_an_error_about_a_setting_names_it_in_python_and_as_a_flag_and_survives_pickling():
    from gridspec.cli import cli_message

    with pytest.raises(gs.GridSpecError) as info:
        SearchSettings.create(eta=3)
    error = pickle.loads(pickle.dumps(info.value))  # as it comes back from a worker process
    assert error.setting == "eta"
    assert str(error) == ("eta= tunes successive halving; it needs strategy='halving', 'asha' or 'hyperband' "
                          "(got strategy='grid', eta=3)")
    assert cli_message(error) == ("--eta tunes successive halving; it needs --strategy halving, asha or "
                                  "hyperband (got --strategy grid, --eta 3)")
    with pytest.raises(gs.GridSpecError) as info:
        SearchSettings.create(epochs=0)
    assert info.value.setting == "epochs" and cli_message(info.value) == "--epochs must be a positive integer (got --epochs 0)"


def test_build_search_shows_its_real_signature_with_the_settings_defaults():
    signature = inspect.signature(build.search)
    fields = {f.name: f.default for f in attrs.fields(SearchSettings)}
    assert list(signature.parameters) == list(SearchSettings.NAMES) or set(signature.parameters) == set(fields)
    for name, parameter in signature.parameters.items():
        assert parameter.kind is parameter.KEYWORD_ONLY
        assert parameter.default == fields[name] or (name == "callbacks" and parameter.default == ())


def test_numpy_integers_are_integers():
    result = build.search(epochs=np.int64(1), steps_per_epoch=np.int64(2), validation_steps=1, train=train, val=val)
    assert result.best.epochs == 1


def test_the_fingerprint_is_made_of_the_settings_marked_as_changing_scores():
    marked = {f.name for f in attrs.fields(SearchSettings) if f.metadata.get("score")}
    assert marked == {"epochs", "steps_per_epoch", "validation_steps", "objective", "direction",
                      "seed", "repeats", "callbacks"}
    assert set(SearchSettings(epochs=2).score_fields()) == marked


# -- missing extras ----------------------------------------------------------------------------------
def test_tensorboard_without_the_package_is_a_clean_cli_error(tmp_path):
    shadow = tmp_path / "shadow" / "tensorboard"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named tensorboard (shadowed)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "gridspec", "run", "examples/seed_grid.py:build", "--epochs", "1",
         "--steps-per-epoch", "1", "--validation-steps", "1", "--tensorboard", str(tmp_path / "logs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert 'needs tensorboard; install it with pip install "gridspec[tensorboard]"' in proc.stderr
    assert "Model 1 of" not in proc.stdout  # said before anything trained


def test_a_missing_extra_is_a_gridspec_error_and_an_import_error():
    with pytest.raises(gs.GridSpecError) as info:
        gs.errors.require_extra("gridspec_no_such_package", "nothing", "this feature")
    assert isinstance(info.value, ImportError)
    assert 'this feature needs gridspec_no_such_package; install it with pip install "gridspec[nothing]"' in str(info.value)


# -- refit keeps every setting -------------------------------------------------------------------
def test_refit_keeps_distribute():
    result = build.search(distribute="mirrored", **SMALL)
    assert result.context.settings.distribute == "mirrored"
    model = result.refit()
    assert type(model.distribute_strategy).__name__ == "MirroredStrategy"


# -- the trainer seam -------------------------------------------------------------------------------
def test_a_trainer_reads_a_frozen_context_made_where_it_trains_and_changes_nothing_it_was_given():
    from gridspec.records import TrainingContext, TrialSettings
    from gridspec.trial import TrialRunner

    settings = TrialSettings(objective="val_loss", direction="min", steps_per_epoch=2, validation_steps=1, fuse=1)
    runner = TrialRunner(build, train, val, settings, distribute="mirrored")
    context = runner.trainer.context
    assert isinstance(context, TrainingContext) and context.sources is runner.sources
    assert type(context.distribute).__name__ == "MirroredStrategy"  # resolved once, here
    assert runner.distribute == "mirrored"  # the runner's own setting is untouched
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        context.distribute = None  # type: ignore[misc]


# -- frozen records ---------------------------------------------------------------------------------
def test_a_result_cannot_be_changed_through_its_records():
    result = build.search(**SMALL)
    trial = result.trials[0]
    with pytest.raises(TypeError, match="frozen gridspec record"):
        trial.params["act"] = "sigmoid"
    with pytest.raises(TypeError):
        trial.history["loss"][0] = 0.0
    with pytest.raises(TypeError):
        trial.history["loss"] = (1.0,)
    assert result.best_params["act"] in ("tanh", "relu")
    assert hash(trial) == hash(attrs.evolve(trial))
    assert pickle.loads(pickle.dumps(trial)) == trial
    assert Trial.from_dict(trial.to_dict()) == trial
    copy = result.best_params
    copy["act"] = "changed"  # best_params is the caller's own dict
    assert result.best_params["act"] != "changed"


# -- the loop, with a fake executor -------------------------------------------------------------------
class FakeExecutor(Executor):
    """Answers each task with a trial whose score is its index; records the groups it got."""

    def __init__(self, capacity: int = 1, scores=None) -> None:
        self.capacity = capacity
        self.groups: list[list[int]] = []
        self.scores = scores or {}

    def submit_many(self, tasks):
        self.groups.append([t.number for t in tasks])
        futures = []
        for task in tasks:
            future: concurrent.futures.Future = concurrent.futures.Future()
            score = self.scores.get(task.number, float(task.number))
            future.set_result(Trial(number=task.number, params=task.params, status=TrialStatus.COMPLETE,
                                    score=score, history={"loss": [score] * task.epochs},
                                    best_epoch=1, epochs=task.epochs))
            futures.append(future)
        return futures


def test_the_loop_groups_trials_that_read_the_same_batches():
    space = gs.grid(bs=[8, 16], act=["a", "b", "c"])(lambda bs, act: None).space
    executor = FakeExecutor()
    loop = _Loop(space, GridStrategy(space.size, 2), executor, None, group_size=2,
                 group_key=lambda params: params["bs"])
    trials = loop.run()
    assert [t.number for t in trials] == [1, 2, 3, 4, 5, 6]
    assert executor.groups == [[1, 2], [3], [4], [5, 6]]  # never across batch sizes, at most 2


def test_the_loop_spreads_groups_over_the_free_slots():
    space = gs.grid(act=list(range(12)))(lambda act: None).space
    executor = FakeExecutor(capacity=2)
    _Loop(space, GridStrategy(space.size, 1), executor, None, group_size=12).run()
    assert executor.groups == [list(range(1, 7)), list(range(7, 13))]


class InWaves(StrategyBase):
    """Proposes combinations 0-11, then, once any has finished, 12-17 (like ASHA's first
    promotions near a rung's end): between the waves it waits."""

    total = 18

    def __init__(self) -> None:
        self.asked, self.told = 0, 0

    def ask(self):
        if self.asked == 18:
            return Decision.STOP if self.told == 18 else Decision.WAIT
        if self.asked == 12 and self.told == 0:
            return Decision.WAIT
        self.asked += 1
        return Proposal(self.asked - 1, 1)

    def tell(self, proposal, score):
        self.told += 1


class OneSlowWorker(FakeExecutor):
    """Two workers; the second group sent takes a while, the others finish at once."""

    def submit_many(self, tasks):
        futures = super().submit_many(tasks)
        if len(self.groups) != 2:
            return futures
        slow = [concurrent.futures.Future() for _ in futures]
        threading.Timer(0.3, lambda: [s.set_result(f.result()) for s, f in zip(slow, futures)]).start()
        return slow


def test_the_loop_shares_the_last_work_with_a_busy_worker_instead_of_giving_it_all_to_one():
    space = gs.grid(act=list(range(18)))(lambda act: None).space
    executor = OneSlowWorker(capacity=2)
    trials = _Loop(space, InWaves(), executor, None, group_size=12).run()
    assert len(trials) == 18
    # 12 proposals for two free workers: two groups. When the first is done, the other still
    # trains: the next six are split for both workers (three now, three held for the next
    # free one), not all six given to the one free worker
    assert executor.groups == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [13, 14, 15], [16, 17, 18]]
    # one worker: nothing to share, the group is as large as the strategy allows
    alone = FakeExecutor(capacity=1)
    _Loop(space, InWaves(), alone, None, group_size=12).run()
    assert alone.groups == [list(range(1, 13)), list(range(13, 19))]


def test_the_loop_with_halving_groups_each_rung():
    space = gs.grid(act=list(range(9)))(lambda act: None).space
    executor = FakeExecutor()
    trials = _Loop(space, HalvingStrategy(9, 9, eta=3), executor, None, group_size=12).run()
    assert [len(g) for g in executor.groups] == [9, 3, 1]  # a rung is one group
    assert sum(t.status is TrialStatus.PRUNED for t in trials) == 8


# -- the import rule ---------------------------------------------------------------------------------
KERAS = {"keras", "tensorflow"}
KERAS_ALLOWED = {"training", "data.py", "feeds.py", "executors/process.py"}
# The imports upward the layer table allows, each named in docs/architecture.md with its reason.
UPWARD = {
    ("decorators.py", "engine.py"),  # build.search(...) is search(build, ...)
    ("result.py", "effects.py"),  # SearchResult.effects()
    ("result.py", "plot.py"),  # SearchResult.plot()
    ("engine.py", "display/"),  # verbose=1: the display the search reports to
}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function; ``from gridspec
    import tb`` counts as ``gridspec.tb``. Imports under ``if TYPE_CHECKING:`` are skipped:
    they are annotations."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "gridspec":
            for alias in node.names:  # a submodule, or a name of the package itself
                submodule = (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()
                names.add(f"gridspec.{alias.name}" if submodule else "gridspec")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layers() -> list[list[str]]:
    """docs/architecture.md's table, top row first: each row's entries (``engine.py``,
    ``training/``); a row whose entries end in a comma goes on on the next line."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```\n", 2)[1]
    rows: list[list[str]] = []
    going_on = False
    for line in block.splitlines():
        left = line.split("  ")[0].strip()
        if not left:
            continue
        entries = [e.split("(")[0].strip() for e in left.rstrip(",").split(", ")]
        entries = [e for e in entries if e]
        if going_on:
            rows[-1].extend(entries)
        else:
            rows.append(entries)
        going_on = left.endswith(",")
    return rows


def _entry(module: str, entries: set[str]) -> str | None:
    """The table's entry for ``gridspec.x.y``: ``x/`` for a package, else ``x.py``."""
    parts = module.split(".")
    if parts[0] != "gridspec":
        return None
    if len(parts) == 1:
        return "__init__.py"
    return f"{parts[1]}/" if f"{parts[1]}/" in entries else f"{parts[1]}.py"


def test_the_layer_table_lists_every_module_once():
    rows = _layers()
    entries = [e for row in rows for e in row]
    assert len(entries) == len(set(entries)), entries
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        top = relative.split("/")[0] + "/" if "/" in relative else relative
        assert top in entries, f"{relative} is in no row of docs/architecture.md's table"
    assert rows[0][0] == "__init__.py" and "errors.py" in rows[-1]


def test_no_module_imports_a_layer_above_its_own():
    rows = _layers()
    level = {entry: depth for depth, row in enumerate(rows) for entry in row}  # 0: the top row
    upward = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        own = relative.split("/")[0] + "/" if "/" in relative else relative
        for name in _imports(path):
            target = _entry(name, set(level))
            if target is not None and level[target] < level[own]:
                upward.add((own, target))
    assert upward == UPWARD  # each allowed one is still needed, and there is no other


def test_keras_is_imported_only_where_training_and_data_live():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if any(relative == a or relative.startswith(a + "/") for a in KERAS_ALLOWED):
            continue
        keras_imports = {n for n in _imports(path) if n.split(".")[0] in KERAS}
        assert not keras_imports, (relative, keras_imports)


def test_importing_gridspec_imports_neither_keras_nor_the_training_code():
    code = ("import sys, gridspec, gridspec.engine, gridspec.settings; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'ray')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- axes named like training settings do what they say -------------------------------------
@gs.grid(lr=[0.01], epochs=[1, 3])
def with_epochs(lr, **kwargs):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


def test_an_epochs_axis_trains_each_combination_for_that_many_epochs():
    result = with_epochs.search(**SMALL)
    assert [(t.params["epochs"], t.epochs, len(t.history["loss"])) for t in result.trials] == [(1, 1, 1), (3, 3, 3)]


def test_an_epochs_axis_with_halving_is_refused():
    with pytest.raises(gs.GridSpecError, match=r"grid axis epochs=\[1, 3\] and strategy='halving'"):
        with_epochs.search(strategy="halving", **SMALL)


def test_a_batch_size_axis_swallowed_by_kwargs_with_generator_data_is_refused():
    @gs.grid(lr=[0.01], batch_size=[8, 32])
    def swallowed(lr, **kwargs):
        return with_epochs.fn(lr)

    with pytest.raises(gs.GridError) as info:
        swallowed.search(**SMALL)
    message = str(info.value)
    assert "grid axis batch_size=[8, 32] is named like a training setting" in message
    assert "takes it only through **kwargs" in message and "in-memory (x, y) arrays" in message


def test_a_batch_size_axis_batches_in_memory_arrays():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")

    @gs.grid(batch_size=[8, 32])
    def any_model(**kwargs):
        return with_epochs.fn(0.01)

    result = any_model.search(train=lambda: (x, x[:, :1]), val=None, epochs=1)
    assert [t.params["batch_size"] for t in result.completed] == [8, 32]
    assert result.trials[0].history["loss"] != result.trials[1].history["loss"]


def test_the_eta_counts_only_trials_still_to_train():
    from gridspec.progress import TrialFinished

    space = gs.grid(act=list(range(4)))(lambda act: None).space
    alone: list = []
    _Loop(space, GridStrategy(4, 1), FakeExecutor(), alone.append, group_size=1).run()
    assert [e.eta is not None for e in alone if isinstance(e, TrialFinished)] == [True, True, True, False]
    together: list = []
    _Loop(space, GridStrategy(4, 1), FakeExecutor(), together.append, group_size=4).run()
    assert [e.eta for e in together if isinstance(e, TrialFinished)] == [None] * 4  # all done at once
