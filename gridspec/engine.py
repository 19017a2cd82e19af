"""``search()``: wires a grid, its data, a strategy, an executor and the result together.

Owns the search loop and the settings' validation. The loop asks the strategy for work,
submits it to the executor, tells the strategy each outcome, and hands progress events to
whoever asked for them. It never prints and never touches Keras itself (``trial`` does).
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from gridspec.artifacts import BestModelFile, check_save_best
from gridspec.decorators import GridFunction
from gridspec.distribute import check_distribute
from gridspec.errors import GridSpecError, SearchError, SearchInterrupted
from gridspec.executors import check_executor, make_executor
from gridspec.fingerprint import search_fingerprint
from gridspec.interrupt import StopRequest
from gridspec.journal import Journal, open_journal
from gridspec.progress import Event, Note, SearchFinished, SearchStarted, TrialFinished, TrialStarted, reporter
from gridspec.registry import AUTO, scan
from gridspec.result import SearchResult, Trial, TrialStatus, is_maximised
from gridspec.strategies import STRATEGIES, Decision, Proposal, make_strategy
from gridspec.runspec import RunSpec
from gridspec.trial import TrialRunner, TrialSettings, TrialTask, failed_trial
from gridspec.data import DEFAULT_CACHE_BYTES

__all__ = ["MAX_UNCAPPED", "SearchContext", "search"]

MAX_UNCAPPED = 1_000_000  # combinations a search may have without max_trials

StrategyName = Literal["grid", "random", "halving", "asha", "hyperband"]
ExecutorName = Literal["process", "ray"]


@attrs.frozen
class SearchContext:
    """What produced a result, so ``refit`` and exports can reuse the search's settings."""

    grid: GridFunction
    settings: dict[str, Any]


def _positive(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = " or None" if allow_none else ""
        raise GridSpecError(f"{name} must be a positive integer{extra} (got {name}={value!r})")


def _resolve_objective(objective: str | None, direction: str | None, has_val: bool) -> tuple[str, str]:
    if objective is None:
        objective = "val_loss" if has_val else "loss"
    if not isinstance(objective, str) or not objective:
        raise GridSpecError(f"objective must be a Keras history key such as 'val_loss' (got {objective!r})")
    if direction is None:
        direction = "max" if is_maximised(objective) else "min"
    if direction not in ("min", "max"):
        raise GridSpecError(f"direction must be 'min' or 'max' (got direction={direction!r})")
    if objective.startswith("val_") and not has_val:
        raise GridSpecError(
            f"objective {objective!r} needs validation data, and there is no @val_data factory; "
            f"add one, pass val=<factory>, or use objective={objective.removeprefix('val_')!r}"
        )
    return objective, direction


def search(
    grid: GridFunction,
    *,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    objective: str | None = None,
    direction: Literal["min", "max"] | None = None,
    strategy: StrategyName = "grid",
    max_trials: int | None = None,
    workers: int = 1,
    executor: ExecutorName | None = None,
    gpus: Sequence[int] | None = None,
    distribute: Any = None,
    seed: int = 0,
    repeats: int = 1,
    callbacks: Sequence[Any] = (),
    storage: str | None = None,
    resume: bool = True,
    max_failures: int | None = None,
    save_best: str | None = None,
    tensorboard_dir: str | None = None,
    train: Any = AUTO,
    val: Any = AUTO,
    verbose: int | bool | Callable[[Event], None] = 0,
    cache_data: bool | int = True,
    keras_verbose: int = 0,
    eta: int = 3,
    min_epochs: int | None = None,
    address: str | None = None,
    trial_resources: Mapping[str, float] | None = None,
) -> SearchResult:
    """Train the grid's combinations on the same data and compare them on ``objective``.

    ``eta`` / ``min_epochs`` tune ``strategy="halving"``, ``"asha"`` and ``"hyperband"``;
    ``address`` (a Ray cluster's) and ``trial_resources`` (``{"num_cpus": 1, "num_gpus": 0}``
    per trial) tune ``executor="ray"``. Returns a frozen ``SearchResult``. Raises ``GridSpecError`` for usage mistakes before
    anything trains, and ``SearchError`` when every trial failed.
    """
    tensorboard_dir = _check_settings(
        grid, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
        max_trials=max_trials, workers=workers, repeats=repeats, max_failures=max_failures,
        resume=resume, seed=seed, strategy=strategy, executor=executor, gpus=gpus,
        distribute=distribute, eta=eta, min_epochs=min_epochs, address=address,
        trial_resources=trial_resources, save_best=save_best, tensorboard_dir=tensorboard_dir,
    )

    space = grid.space
    size = space.size
    if size > MAX_UNCAPPED and max_trials is None:
        raise GridSpecError(
            f"{grid.fn.__qualname__}() has a grid of {size:,} combinations ({space.describe()}); "
            f"more than {MAX_UNCAPPED:,} needs max_trials=N (and perhaps strategy='random'), "
            f"or fewer values per axis"
        )

    registry = scan(_module_of(grid))
    train_fn = registry.factory("train", train)
    val_fn = registry.factory("val", val)
    if train_fn is None:
        raise GridSpecError("a search needs training data (train=None)")
    objective, goal = _resolve_objective(objective, direction, val_fn is not None)
    cache_bytes = DEFAULT_CACHE_BYTES if cache_data is True else int(cache_data or 0)
    options: dict[str, Any] = {"eta": eta, "min_epochs": min_epochs, "direction": goal}
    plan = make_strategy(strategy, size=size, epochs=epochs, max_trials=max_trials, seed=seed, **options)
    settings = TrialSettings(
        objective=objective,
        direction=goal,
        steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps,
        seed=seed,
        repeats=repeats,
        cache_bytes=cache_bytes,
        keras_verbose=keras_verbose,
        checkpoint_dir=_checkpoint_dir(storage) if getattr(plan, "continues", False) else None,
    )
    best_file = BestModelFile(save_best, goal) if save_best is not None else None
    settings = attrs.evolve(settings, save_dir=best_file.staging if best_file is not None else None,
                           tensorboard_dir=tensorboard_dir)
    runner = TrialRunner(grid, train_fn, val_fn, settings, callbacks=callbacks, distribute=distribute)
    report = reporter(verbose)
    context = SearchContext(grid, {
        "epochs": epochs, "steps_per_epoch": steps_per_epoch, "validation_steps": validation_steps,
        "seed": seed, "train": train_fn, "val": val_fn, "objective": objective, "direction": goal,
        "callbacks": tuple(callbacks), "cache_data": cache_data,
    })

    runner.prepare(space[0])  # probe the data: its mistakes surface before anything trains
    journal = _open_storage(storage, resume, grid, train_fn, val_fn, settings, epochs, strategy,
                            callbacks) if storage is not None else None

    started = time.perf_counter()

    def runspec() -> RunSpec:  # only executors that leave this process need one
        return RunSpec.from_search(grid, train_fn, val_fn, settings, callbacks=callbacks, distribute=distribute)

    if executor == "ray":
        from gridspec.executors.ray import RayExecutor

        executor_: Any = RayExecutor(runspec(), address=address, resources=trial_resources)
    else:
        executor_ = make_executor(executor, workers, gpus, runner, runspec)
    loop = _Loop(space, plan, executor_, report, journal, max_failures,
                 on_trial=best_file.offer if best_file is not None else None)
    stop = StopRequest(lambda: loop._emit(Note(
        "interrupted: stopping after the trial in progress is recorded (Ctrl-C again to stop at once)")))
    interrupted = False
    try:
        if report:
            report(SearchStarted(plan.total, size, objective, goal, strategy, space.describe()))
            if journal is not None:
                report(Note(_storage_note(journal, make_strategy(
                    strategy, size=size, epochs=epochs, max_trials=max_trials, seed=seed, **options), plan.total)))
        if tensorboard_dir is not None:
            from gridspec import tb

            tb.write_experiment(tensorboard_dir, {a.name: a.values for a in space.axes}, objective)
        with stop:
            trials = loop.run(stop)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once; the trial in progress is lost
        interrupted, trials = True, loop.collected()
    finally:  # an exception on its way out (Ctrl-C twice, a user mistake): stop workers now
        executor_.shutdown(cancel=interrupted or sys.exc_info()[0] is not None)
        if journal is not None:
            journal.close()
        if best_file is not None:
            best_file.close()
        if settings.checkpoint_dir is not None and not (journal is not None and (interrupted or stop.requested)):
            shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)  # kept only to resume
    interrupted = interrupted or (stop.requested and loop.finished < plan.total)
    result = SearchResult(
        trials=tuple(trials),
        objective=objective,
        direction=goal,
        duration=time.perf_counter() - started,
        axes=space.names,
        context=context,
    )
    if interrupted:
        message = f"search interrupted after {loop.finished} of {plan.total} trials; " + (
            f"every finished trial is recorded in {storage}: run the same search again to resume "
            f"(gridspec run ... --storage {storage})" if storage is not None
            else "the finished trials are in this exception's .result; pass storage=PATH "
            "(--storage PATH) to make a search resumable"
        )
        if report:
            report(Note(message))
        raise SearchInterrupted(message, result)
    if report:
        report(SearchFinished(result))
    if loop.gave_up is not None and loop.finished < plan.total:
        last = loop.gave_up
        raise SearchError(
            f"stopped after {max_failures} consecutive failed trials (max_failures={max_failures}); "
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


def _check_settings(
    grid: Any, *, epochs: Any, steps_per_epoch: Any, validation_steps: Any, max_trials: Any,
    workers: Any, repeats: Any, max_failures: Any, resume: Any, seed: Any, strategy: Any,
    executor: Any, gpus: Any, distribute: Any, eta: Any, min_epochs: Any, address: Any,
    trial_resources: Any, save_best: Any, tensorboard_dir: Any,
) -> str | None:
    """Refuse bad settings before anything is imported or trained; returns the checked
    ``tensorboard_dir``."""
    if not isinstance(grid, GridFunction):
        raise GridSpecError(f"search() needs a function decorated with @grid (got {grid!r})")
    _positive("epochs", epochs)
    _positive("steps_per_epoch", steps_per_epoch, allow_none=True)
    _positive("validation_steps", validation_steps, allow_none=True)
    _positive("max_trials", max_trials, allow_none=True)
    _positive("workers", workers)
    _positive("repeats", repeats)
    _positive("max_failures", max_failures, allow_none=True)
    if not isinstance(resume, bool):
        raise GridSpecError(f"resume must be True or False (got resume={resume!r})")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GridSpecError(f"seed must be an integer (got seed={seed!r})")
    if strategy not in STRATEGIES:
        raise GridSpecError(
            f"unknown strategy {strategy!r}; valid strategies: {', '.join(map(repr, STRATEGIES))}"
        )
    check_executor(executor, workers, gpus)
    check_distribute(distribute)
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise GridSpecError(f"eta must be an integer of at least 2, such as eta=3 (got eta={eta!r})")
    _positive("min_epochs", min_epochs, allow_none=True)
    if executor != "ray" and (address is not None or trial_resources is not None):
        raise GridSpecError("address= and trial_resources= need executor='ray'")
    if save_best is not None:
        check_save_best(save_best)
    if tensorboard_dir is not None:
        tensorboard_dir = _check_tensorboard_dir(tensorboard_dir)
    return tensorboard_dir


def _open_storage(storage: str, resume: bool, grid: GridFunction, train_fn: Any, val_fn: Any,
                  settings: TrialSettings, epochs: int, strategy: str, callbacks: Sequence[Any]) -> Journal:
    """The journal, opened before anything trains: a bad path or a stale file fails here."""
    space = grid.space
    fingerprint = search_fingerprint(
        [(axis.name, axis.values) for axis in space.axes], grid.fn, train_fn, val_fn,
        {"epochs": epochs, "steps_per_epoch": settings.steps_per_epoch,
         "validation_steps": settings.validation_steps, "objective": settings.objective,
         "direction": settings.direction, "seed": settings.seed, "repeats": settings.repeats,
         "callbacks": [type(c).__qualname__ for c in callbacks]},
    )
    return open_journal(storage, fingerprint, {
        "target": grid.target, "description": space.describe(), "size": space.size,
        "objective": settings.objective, "direction": settings.direction, "strategy": strategy,
        "epochs": epochs,
    }, resume=resume)


def _storage_note(journal: Journal, fresh_plan: Any, total: int) -> str:
    """The line that says what the journal holds for this run: what resumes, what reruns."""
    if not journal.resumed:
        kept = f" (the {journal.previous} earlier in the file are kept)" if journal.previous else ""
        return f"storage {journal.label}: new search {journal.search.id}{kept}"
    done = 0  # replay the strategy on the stored scores: exactly what this run will skip
    while isinstance(proposal := fresh_plan.ask(), Proposal):
        stored = journal.stored(proposal.number, proposal.epochs)
        done += stored is not None
        fresh_plan.tell(proposal, stored.score if stored is not None else None)
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
    search continues its trials when resumed), else a temporary folder of this search."""
    if storage is not None and storage != ":memory:":
        return os.path.abspath(storage) + ".checkpoints"  # created by the first trial
    return tempfile.mkdtemp(prefix="gridspec-halving-", dir=os.environ.get("GRIDSPEC_CHECKPOINT_DIR"))


def _module_of(grid: GridFunction) -> Any:
    module = sys.modules.get(grid.fn.__module__)
    if module is None:
        raise GridSpecError(f"the module of {grid.fn.__qualname__}() ({grid.fn.__module__}) is not imported")
    return module


class _Loop:
    """Ask the strategy, submit to the executor, tell outcomes back; collect the trials."""

    def __init__(self, space: Any, plan: Any, executor: Any,
                 report: Callable[[Event], None] | None,
                 journal: Journal | None = None, max_failures: int | None = None,
                 on_trial: Callable[[Trial], Any] | None = None) -> None:
        self.on_trial = on_trial  # sees every finished trial first (save_best keeps the best model)
        self.space = space
        self.plan = plan
        self.executor = executor
        self.report = report
        self.trials: dict[int, Trial] = {}
        self.position = 0
        self.finished = 0
        self.durations: list[float] = []
        self.journal = journal
        self.max_failures = max_failures
        self.failures_in_a_row = 0
        self.gave_up: Trial | None = None  # the last of max_failures failures in a row
        self.started_in: dict[int, int] = {}  # rung -> trials submitted (halving counts per rung)
        self.finished_in: dict[int, int] = {}

    def _emit(self, event: Event) -> None:
        if self.report is not None:
            self.report(event)

    def _submit(self, proposal: Proposal) -> concurrent.futures.Future[Trial]:
        params = self.space[proposal.index]
        self.position += 1
        self.started_in[proposal.rung] = self.started_in.get(proposal.rung, 0) + 1
        task = TrialTask(proposal.number, params, proposal.epochs, proposal.start_epoch)
        position, total = self._progress(proposal, self.position, self.started_in)
        self._emit(TrialStarted(position, total, task.number, params, task.epochs, task.start_epoch))
        if self.journal is not None:
            self.journal.record_start(task.number, task.epochs)
        return self.executor.submit(task)

    def _resume(self, proposal: Proposal, stored: Trial) -> None:
        """A proposal the journal already answers: no training, params taken from the grid."""
        trial = attrs.evolve(stored, params=self.space[proposal.index])
        self.trials[proposal.index] = trial
        if self.on_trial is not None:
            self.on_trial(trial)
        self.plan.tell(proposal, stored.score)
        self.position += 1
        self.finished += 1
        self._rung_notes()

    def _collect(self, proposal: Proposal, future: concurrent.futures.Future[Trial]) -> None:
        exc = future.exception()
        if exc is not None:
            if isinstance(exc, GridSpecError) and not any(t.ok for t in self.trials.values()):
                raise exc  # a mistake in the definition: stop before it repeats N times
            task = TrialTask(proposal.number, self.space[proposal.index], proposal.epochs, proposal.start_epoch)
            trial = failed_trial(task, exc, 0.0)
        else:
            trial = future.result()
        if self.journal is not None:  # committed before anyone hears of the trial
            self.journal.record_finish(trial, proposal.epochs)
        self.trials[proposal.index] = trial
        if trial.status is TrialStatus.FAILED:
            self.failures_in_a_row += 1
            if self.max_failures is not None and self.failures_in_a_row >= self.max_failures:
                self.gave_up = trial
        else:
            self.failures_in_a_row = 0
        if self.on_trial is not None:
            self.on_trial(trial)
        self.plan.tell(proposal, trial.score if trial.status is not TrialStatus.FAILED else None)
        self.finished += 1
        self.finished_in[proposal.rung] = self.finished_in.get(proposal.rung, 0) + 1
        self.durations.append(trial.duration)
        position, total = self._progress(proposal, self.finished, self.finished_in)
        remaining = max(0, total - position)
        eta = sum(self.durations) / len(self.durations) * remaining / self.executor.capacity
        self._emit(TrialFinished(position, total, trial, eta))
        self._rung_notes()

    def _rung_notes(self) -> None:
        for outcome in getattr(self.plan, "take_outcomes", list)():  # halving's rung lines
            self._emit(Note(str(outcome)))

    def _progress(self, proposal: Proposal, overall: int, per_rung: dict[int, int]) -> tuple[int, int]:
        """"Model i of N": over the whole run, or within the rung for halving."""
        rung_size = getattr(self.plan, "rung_size", None)
        if rung_size is None:
            return overall, self.plan.total
        return per_rung[proposal.rung], rung_size(proposal.rung)

    def collected(self) -> list[Trial]:
        pruned: frozenset[int] = getattr(self.plan, "pruned", frozenset())  # halving's
        return [
            attrs.evolve(t, status=TrialStatus.PRUNED)
            if i in pruned and t.status is TrialStatus.COMPLETE else t
            for i, t in sorted(self.trials.items())
        ]

    def run(self, stop: StopRequest | None = None) -> list[Trial]:
        pending: dict[concurrent.futures.Future[Trial], Proposal] = {}
        while True:
            decision: Proposal | Decision = Decision.WAIT
            stopping = (stop is not None and stop.requested) or self.gave_up is not None
            if not stopping and len(pending) < self.executor.capacity:
                decision = self.plan.ask()
            if isinstance(decision, Proposal):
                stored = self.journal.stored(decision.number, decision.epochs) if self.journal else None
                if stored is not None:
                    self._resume(decision, stored)
                else:
                    pending[self._submit(decision)] = decision
                continue
            if not pending:
                if decision is Decision.STOP or stopping:
                    break
                raise RuntimeError("strategy waits with no trial running")  # a strategy bug
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f].index):
                self._collect(pending.pop(future), future)
        return self.collected()
