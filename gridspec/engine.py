"""``search()``: wires a grid, its data, a strategy, an executor and the result together.

A search runs in phases, each with one job (docs/architecture.md, "Engine"):

1. validate — ``SearchSettings.create``: every setting on its own;
2. plan — ``_plan``: the registry, the data factories, the objective and every refusal
   that needs more than one setting (nothing is created on disk or started yet);
3. probe — the first combination's data is read, so data mistakes surface first: here,
   or, when trials run in worker processes or on Ray, by a worker as it starts (the
   executor's ``wait_ready``, before the journal is opened), so that this process never
   imports TensorFlow for it;
4. open — the executor, the journal, the checkpoint folder and ``save_best``'s staging,
   in one ``ExitStack``: everything opened is closed on every path;
5. run — ``_Loop`` (``gridspec.loop``) asks the strategy, submits groups of tasks to the
   executor, tells the strategy each outcome and emits progress events;
6. conclude — the ``SearchResult``, or ``SearchInterrupted`` / ``SearchError``.

The engine never prints and never touches Keras (``trial`` and ``training`` do).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from typing import Any

import attrs

from gridspec.artifacts import BestModelFile, check_save_best, staging_folder
from gridspec.decorators import GridFunction
from gridspec.errors import GridSpecError, Named, SearchError, SearchInterrupted, require_extras
from gridspec.executors import check_not_in_worker, make_executor
from gridspec.fingerprint import search_fingerprint
from gridspec.interrupt import StopRequest
from gridspec.journal import Journal, open_journal
from gridspec.loop import _Loop
from gridspec.objective import Objective
from gridspec.progress import Note, SearchFinished, SearchStarted
from gridspec.records import RunFolders, TrialSettings
from gridspec.registry import module_of, scan
from gridspec.result import SearchResult, TrialStatus
from gridspec.runspec import RunSpec
from gridspec.settings import MAX_UNCAPPED, SearchSettings
from gridspec.strategies import Proposal, Strategy, make_strategy, nothing_to_cut
from gridspec.trial import TrialRunner

__all__ = ["MAX_UNCAPPED", "SearchContext", "search", "run_search"]


@attrs.frozen
class SearchContext:
    """What produced a result, so ``refit`` can train the best combination again the same
    way: the grid, and the search's settings with its data factories resolved."""

    grid: GridFunction
    settings: SearchSettings
    objective: Objective

    def refit(self, result: SearchResult, **changes: Any) -> Any:
        from gridspec.refit import refit

        return refit(result, **changes)


def search(grid: GridFunction, **settings: Any) -> SearchResult:
    """Train the grid's combinations on the same data and compare them on the objective.

    ``settings`` are ``SearchSettings``' fields (``gridspec.settings``; ``build.search``
    shows them with their defaults). Returns a frozen ``SearchResult``. Raises
    ``GridSpecError`` for usage mistakes before anything trains, ``SearchError`` when every
    trial failed, and ``SearchInterrupted`` (with the finished trials) on Ctrl-C.
    """
    if not isinstance(grid, GridFunction):
        raise GridSpecError(f"search() needs a function decorated with @grid (got {grid!r})")
    return run_search(grid, SearchSettings.create(**settings))


@attrs.frozen
class _Plan:
    """Everything decided before anything is created: phase 2's output."""

    grid: GridFunction
    settings: SearchSettings  # train/val resolved to callables (or None)
    objective: Objective
    trial_settings: TrialSettings  # its folders named, none created yet
    save_best: str | None
    runspec: RunSpec | None  # for executors that leave this process
    epochs_axis: bool  # an ``epochs`` axis sets each combination's budget

    def strategy(self) -> Strategy:
        s = self.settings
        options: dict[str, Any] = {}
        if s.continues:
            options = {"eta": s.eta_or_default, "min_epochs": s.min_epochs, "direction": self.objective.direction}
        return make_strategy(s.strategy, size=self.grid.space.size, epochs=s.epochs,
                             max_trials=s.max_trials, seed=s.seed, **options)


def _plan(grid: GridFunction, settings: SearchSettings) -> _Plan:
    """Every refusal that needs the grid, its module or several settings at once."""
    space = grid.space
    s = settings
    if space.product_size > MAX_UNCAPPED and s.max_trials is None:
        counting = "; counting what where= keeps is a pass over them all, and" if space.where is not None else ";"
        raise GridSpecError(
            f"{grid.fn.__qualname__}() has a grid of {space.product_size:,} combinations "
            f"({space.describe(count=False)}){counting} more than {MAX_UNCAPPED:,} needs ",
            Named("max_trials", "N", placeholder=True), " (and perhaps ", Named("strategy", "random"),
            "), or fewer values per axis", setting="max_trials",
        )
    registry = scan(module_of(grid))
    train_fn = registry.factory("train", s.train)
    val_fn = registry.factory("val", s.val)
    if train_fn is None:
        raise GridSpecError("a search needs training data (train=None)")
    objective = Objective.resolve(s.objective, s.direction, val_fn is not None)
    epochs_axis = "epochs" in space.names
    if epochs_axis:
        values = space.axes[space.names.index("epochs")].values
        if s.continues:
            raise GridSpecError(
                f"grid axis epochs={list(values)!r} and ", Named("strategy", s.strategy), " both set the epochs "
                f"a combination trains; halving chooses them itself (up to ", Named("epochs", "N", placeholder=True),
                "): drop the axis", setting="strategy",
            )
        for value in values:
            try:
                ok = not isinstance(value, bool) and int(value) == value and int(value) >= 1
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise GridSpecError(
                    f"grid axis epochs={list(values)!r} sets each combination's epochs, so its values "
                    f"must be positive integers (got {value!r})"
                )
    require_extras([need for need, wanted in (  # every missing extra, said at once
        (("tensorboard.plugins.hparams.summary_v2", "tensorboard", "tensorboard_dir= (--tensorboard)", "tensorboard"),
         s.tensorboard_dir is not None),
        (("ray", "ray", 'executor="ray"', "Ray"), s.executor == "ray")) if wanted])
    if s.distribute is not None:
        from gridspec.training.distribute import check_available

        check_available(s.distribute)
    save_best = check_save_best(s.save_best) if s.save_best is not None else None
    tensorboard_dir = _check_tensorboard_dir(s.tensorboard_dir) if s.tensorboard_dir is not None else None
    settings = s.evolve(train=train_fn, val=val_fn)
    runs_here = s.executor is None and s.workers == 1 and not s.gpus
    folders = RunFolders(
        checkpoint_dir=_checkpoint_dir(s.storage) if s.continues else None,
        save_dir=staging_folder(save_best) if save_best is not None else None,
        tensorboard_dir=tensorboard_dir,
        # only this process continues its trials, and nothing resumes them
        lazy_checkpoints=runs_here and s.storage is None,
    )
    trial_settings = TrialSettings.from_search(s, objective, folders)
    runspec = None
    if not runs_here:
        check_not_in_worker()
        if s.executor == "ray":
            from gridspec.executors.ray import import_ray

            import_ray()  # a missing extra is said before anything is created
        runspec = RunSpec.from_search(grid, train_fn, val_fn, trial_settings,
                                      callbacks=s.callbacks, distribute=s.distribute, probe=space[0])
    return _Plan(grid, settings, objective, trial_settings, save_best, runspec, epochs_axis)


def run_search(grid: GridFunction, settings: SearchSettings) -> SearchResult:
    """Phases 2 to 6 for checked settings (``search()`` and ``refit``'s callers use it)."""
    plan = _plan(grid, settings)
    s = plan.settings
    space = grid.space
    report = s.verbose if callable(s.verbose) else None
    if s.verbose and report is None:  # the displays load only when output is asked for
        from gridspec.display import make_display

        report = make_display()
    # a running trial's epochs (and batches, for a live view) reach the display too
    runner = TrialRunner(grid, s.train, s.val, plan.trial_settings, callbacks=s.callbacks,
                         distribute=s.distribute,
                         notes=(lambda text: report(Note(text))) if report else None,
                         progress=report, progress_batches=bool(getattr(report, "wants_batches", False)))
    folders = plan.trial_settings.folders
    if plan.runspec is None:  # phase 3: data mistakes surface before anything is created
        runner.prepare(space[0])
    strategy = plan.strategy()
    started = time.perf_counter()
    loop: _Loop | None = None
    stop = StopRequest(lambda: report(Note(_stop_note(loop, runner, plan))) if report else None)
    journal: Journal | None = None
    interrupted = False
    with contextlib.ExitStack() as stack:  # phase 4: whatever is opened is closed
        if report is not None and callable(getattr(report, "close", None)):
            stack.callback(getattr(report, "close"))  # a live display stops drawing on every path
        checkpoint_dir = folders.checkpoint_dir
        if checkpoint_dir is not None:  # created by the first trial that keeps a model
            stack.push(lambda *exc: _drop_checkpoints(checkpoint_dir, journal, stop, interrupted))
        best_file = BestModelFile(plan.save_best, plan.objective.direction, folders.save_dir) if plan.save_best else None
        if best_file is not None:
            stack.callback(best_file.close)
        # worker processes send their trials' epochs back to the display
        executor = make_executor(s, runner, plan.runspec, progress=report)
        stack.push(lambda et, ev, tb: executor.shutdown(cancel=interrupted or et is not None))
        # phase 3 where the trials run: a worker reads the first combination's data as it
        # starts (so this process needs no TensorFlow), before the journal is touched
        executor.wait_ready()
        journal = _open_storage(plan) if s.storage is not None else None
        if journal is not None:
            stack.callback(journal.close)
        loop = _Loop(space, strategy, executor, report, journal, s.max_failures,
                     on_trial=best_file.offer if best_file is not None else None,
                     group_size=runner.group_size, group_key=runner.sources.key,
                     epochs_axis=plan.epochs_axis, continues=s.continues)
        if report:
            report(SearchStarted(strategy.total, space.size, plan.objective.name,
                                 plan.objective.direction, s.strategy, space.describe(),
                                 epochs=None if plan.epochs_axis else s.epochs,
                                 planned_epochs=None if plan.epochs_axis else strategy.planned_epochs()))
            cut = None if plan.epochs_axis else nothing_to_cut(s.strategy, strategy)
            if cut is not None:
                report(Note(cut))
            if journal is not None:
                report(Note(_storage_note(journal, plan.strategy(), strategy.total)))
        if folders.tensorboard_dir is not None:
            from gridspec import tb

            tb.write_experiment(folders.tensorboard_dir, {a.name: a.values for a in space.axes},
                                plan.objective.name)
        try:
            with stop:
                trials = loop.run(stop)  # phase 5
        except KeyboardInterrupt:  # a second Ctrl-C, or a group stopped at an epoch end
            interrupted, trials = True, loop.collected()  # (StopAtEpochEnd): its trials are lost
    # phase 6
    assert loop is not None
    interrupted = interrupted or stop.requested  # even if the last trial then finished: asked to stop
    result = SearchResult(
        trials=tuple(trials),
        objective=plan.objective.name,
        direction=plan.objective.direction,
        duration=time.perf_counter() - started,
        axes=space.names,
        context=SearchContext(grid, s, plan.objective),
    )
    if interrupted:
        storage = s.storage
        message = f"search interrupted after {loop.done()} of {strategy.total} trials; " + (
            f"every finished trial is recorded in {storage}: run the same search again to resume "
            f"(gridspec run ... --storage {storage})" if storage is not None
            else "the finished trials are in this exception's .result; pass storage=PATH "
            "(--storage PATH) to make a search resumable"
        )
        raise SearchInterrupted(message, result)
    if report:
        report(SearchFinished(result))
    # fuse=1 stops right after the streak; a group trains its later members anyway, and
    # having trained them does not make the streak count less
    if loop.gave_up is not None and (loop.finished < strategy.total or loop.told_after_give_up):
        last = loop.gave_up
        raise SearchError(
            f"stopped after {s.max_failures} consecutive failed trials (max_failures={s.max_failures}); "
            f"the last error (trial {last.number}) was {last.error}",
            first_error=last.error, result=result,
        )
    if trials and not result.completed and not result.pruned:
        first = result.failed[0].error
        raise SearchError(
            f"all {len(result.failed)} trials failed; the first error (trial "
            f"{result.failed[0].number}) was {first}",
            first_error=first, result=result,
        )
    return result


def _stop_note(loop: _Loop | None, runner: TrialRunner, plan: _Plan) -> str:
    """What a first Ctrl-C waits for: a group training in this process stops at its next
    epoch end (``gridspec.interrupt.check_stop``) and is not recorded; a trial alone, or the
    work of worker processes and Ray, finishes and is recorded."""
    group = loop.in_progress if loop is not None else ()
    if plan.runspec is None and len(group) > 1 and runner.group_size > 1:
        again = " and train again when the search is resumed" if plan.settings.storage is not None else ""
        return (f"interrupted: stopping the running group of {len(group)} trials at its next epoch end; "
                f"its trials are not recorded{again} (Ctrl-C again to stop at once)")
    if plan.runspec is not None and runner.group_size > 1:
        return ("interrupted: stopping after the trials in progress are recorded; a group of trials "
                "training in a worker finishes first (Ctrl-C again to stop at once)")
    return "interrupted: stopping after the trial in progress is recorded (Ctrl-C again to stop at once)"


def _drop_checkpoints(folder: str, journal: Any, stop: StopRequest, interrupted: bool) -> None:
    """Halving's checkpoints are kept only to resume an interrupted search with a journal."""
    if not (journal is not None and (interrupted or stop.requested)):
        shutil.rmtree(folder, ignore_errors=True)


def _open_storage(plan: _Plan) -> Journal:
    """The journal: a bad path or a stale file fails here, before anything trains."""
    s = plan.settings
    space = plan.grid.space
    scored = {**s.score_fields(), "objective": plan.objective.name, "direction": plan.objective.direction}
    fingerprint = search_fingerprint(
        [(axis.name, axis.values) for axis in space.axes], plan.grid.fn, s.train, s.val, scored,
        grids=[[(axis.name, axis.values) for axis in part.axes] for part in space.parts], where=space.where,
    )
    assert s.storage is not None
    return open_journal(s.storage, fingerprint, {
        "target": plan.grid.target, "description": space.describe(), "size": space.size,
        "objective": plan.objective.name, "direction": plan.objective.direction,
        "strategy": s.strategy, "epochs": s.epochs,
    }, resume=s.resume)


def _storage_note(journal: Journal, fresh_plan: Strategy, total: int) -> str:
    """The line that says what the journal holds for this run: what resumes, what reruns,
    counted in trials (combinations), not in the rung runs of a halving-type search."""
    if not journal.resumed:
        kept = f" (the {journal.previous} earlier in the file are kept)" if journal.previous else ""
        return f"storage {journal.label}: new search {journal.search.id}{kept}"
    # replay the strategy on the stored scores: exactly what this run will skip. A trial of
    # a halving-type search is done once every rung it is proposed for is stored.
    stored_runs: set[int] = set()
    missing: set[int] = set()
    while isinstance(proposal := fresh_plan.ask(), Proposal):
        stored = journal.stored(proposal.number, proposal.epochs)
        (stored_runs if stored is not None else missing).add(proposal.number)
        fresh_plan.tell(proposal, stored.score if stored is not None else None)
    done = len(stored_runs - missing)
    again = [f"{len(journal.search.running)} interrupted"] if journal.search.running else []
    failed = sum(1 for t in journal.search.trials if t.status is TrialStatus.FAILED)
    again += [f"{failed} failed"] if failed else []
    rerun = f"; {' and '.join(again)} run again" if again else ""
    return f"resumed: {done} of {total} trials already complete in {journal.label}{rerun}"


def _check_tensorboard_dir(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise GridSpecError(
            f"tensorboard_dir must be a folder path, such as tensorboard_dir='logs' (got {path!r})"
        )
    text = os.fspath(path)
    if os.path.exists(text) and not os.path.isdir(text):
        raise GridSpecError(f"tensorboard_dir={text!r} is a file; give a folder path")
    from gridspec import tb

    tb.require()  # a missing tensorboard package is said before anything trains
    return text


def _checkpoint_dir(storage: str | None) -> str:
    """Where halving keeps models between rungs: next to the journal (so an interrupted
    search continues its trials when resumed), else a temporary folder of this search.
    Only named here: the first trial that keeps a model creates it."""
    if storage is not None and storage != ":memory:":
        return os.path.abspath(storage) + ".checkpoints"
    parent = os.environ.get("GRIDSPEC_CHECKPOINT_DIR") or tempfile.gettempdir()
    return os.path.join(os.path.abspath(parent), f"gridspec-halving-{uuid.uuid4().hex}")
