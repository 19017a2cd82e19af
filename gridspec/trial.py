"""A trial's lifecycle: from ``TrialTask`` (plain data) to a scored ``Trial``.

Owns seeding and repeats, continuation between halving rungs, scoring, and the single
function that classifies a trial's outcome (``failed_trial``): exceptions and non-finite
objectives become a FAILED ``Trial`` with the traceback kept; ``KeyboardInterrupt`` passes
through; user mistakes (``GridSpecError``: bad data, a model function that returns no
compiled model, an objective missing from the history) go back to the engine to decide on.
The Keras part — building and training models — is a trainer's (``gridspec.training``),
which gets a ``TrainingContext`` (``gridspec.records``) and never this runner, so this
module imports no Keras. Knows nothing of the strategy, the executor or the journal.
"""

from __future__ import annotations

import math
import re
import time
import traceback as tb
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from gridspec.data import Sources
from gridspec.decorators import GridFunction
from gridspec.errors import GridSpecError
from gridspec.objective import best_of
from gridspec.registry import check_axes, check_factories
from gridspec.records import TrainingContext, TrialSettings, TrialTask
from gridspec.result import Trial, TrialStatus
from gridspec.training import Fit, FitOutcome, Trainer, continuation, make_trainer, planned_group_size

__all__ = ["NonFiniteObjective", "TrialRunner", "failed_trial"]


class NonFiniteObjective(ArithmeticError):
    """The objective became NaN or infinite: the trial diverged."""


def failed_trial(task: TrialTask, exc: BaseException, duration: float,
                 history: Mapping[str, Sequence[float]] | None = None, fused_with: tuple[int, ...] = ()) -> Trial:
    """The one place a failure becomes a ``Trial``: type, message and traceback kept."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    # In full (Keras puts the real cause on line 3), without Keras's bold/reset terminal codes.
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return Trial(
        number=task.number,
        params=dict(task.params),
        status=TrialStatus.FAILED,
        history=history or {},
        epochs=len(next(iter(history.values()))) if history else 0,
        duration=duration,
        error=error,
        traceback="".join(tb.format_exception(exc)),
        fused_with=fused_with,
    )


def _missing_objective(fused_with: tuple[int, ...], error: GridSpecError) -> GridSpecError:
    """The engine fails such a trial once another has completed; it then keeps the group it
    trained in (``Trial.fused_with``), as the group's other members name it."""
    error.fused_with = fused_with  # type: ignore[attr-defined]
    return error


def _mean_history(histories: Sequence[Mapping[str, Sequence[float]]]) -> dict[str, list[float]]:
    if len(histories) == 1:
        return {k: [float(v) for v in vs] for k, vs in histories[0].items()}
    keys = [k for k in histories[0] if all(k in h for h in histories)]
    out: dict[str, list[float]] = {}
    for key in keys:
        length = min(len(h[key]) for h in histories)
        out[key] = [float(sum(h[key][i] for h in histories) / len(histories)) for i in range(length)]
    return out


@attrs.define
class _Run:
    """One trial while its fits train: what it builds on, what came back, what went wrong."""

    task: TrialTask
    earlier: dict[str, list[float]] | None
    spent: float
    hooks: Any
    histories: list[Mapping[str, Sequence[float]]] = attrs.field(factory=list)
    error: BaseException | None = None
    fused_with: set[int] = attrs.field(factory=set)
    built: bool = True  # False when its model function failed: it trained nothing


class TrialRunner:
    """Turns ``TrialTask``s into ``Trial``s for one search, in the current process.

    Built once per search (or once per worker process): it checks the definitions, holds
    the search's data (``Sources``, each factory probed once) and its trainer. ``progress``
    hears a running trial's ``EpochEnded`` events (and ``BatchEnded`` with
    ``progress_batches``): the engine's display, or a worker process's pipe to the search's.
    """

    def __init__(
        self,
        grid: GridFunction,
        train: Callable[..., Any],
        val: Callable[..., Any] | None,
        settings: TrialSettings,
        callbacks: Sequence[Any] = (),
        distribute: Any = None,
        notes: Callable[[str], None] | None = None,
        progress: Callable[[Any], None] | None = None,
        progress_batches: bool = False,
    ) -> None:
        self.grid = grid
        self.settings = settings
        self.callbacks = tuple(callbacks)
        self.distribute = distribute
        self.notes = notes
        self.progress = progress
        self.progress_batches = progress_batches
        self._noted: set[str] = set()
        self._unsaved = False  # a save_best model failed to save (said once)
        check_factories(grid, train, val)
        self.sources = Sources(train, val, settings.cache_bytes)
        self._trainer: Trainer | None = None

    @property
    def trainer(self) -> Trainer:
        """Built on first use: it imports Keras, which the search's process never needs when
        every trial runs in a worker process or on Ray. Its context is made here, in the
        process that trains, so ``distribute="mirrored"`` becomes a strategy here."""
        if self._trainer is None:
            from gridspec.training.distribute import make_distribute

            context = TrainingContext(self.grid, self.sources, self.settings, self.callbacks,
                                      make_distribute(self.distribute), self.note)
            self._trainer = make_trainer(context)
        return self._trainer

    def note(self, text: str) -> None:
        """Say something once per search (why trials train alone, for instance)."""
        if text not in self._noted:
            self._noted.add(text)
            if self.notes is not None:
                self.notes(text)

    @property
    def group_size(self) -> int:
        """How many trials may train together (1: each alone): the trainer's, or, in a
        process that never trains (the trials run elsewhere), what the settings plan."""
        if self._trainer is None:
            return planned_group_size(self.settings.fuse, self.distribute)
        return self._trainer.group_size

    def prepare(self, params: Mapping[str, Any]) -> None:
        """Probe the data once before anything trains, so data mistakes surface first."""
        train = self.sources.get("train", params)
        val = self.sources.get("val", params)
        assert train is not None
        check_axes(self.grid, self.sources.fns["train"], self.sources.fns["val"], arrays=train.form == "arrays")
        s = self.settings
        if train.endless and s.steps_per_epoch is None:
            raise GridSpecError(
                f"steps_per_epoch is required: data factory {train.label} is endless "
                f"(a generator is repeated forever), so an epoch needs a length; "
                f"pass steps_per_epoch=N (--steps-per-epoch N)"
            )
        if val is not None and val.endless and s.validation_steps is None:
            raise GridSpecError(
                f"validation_steps is required: data factory {val.label} is endless, so "
                f"validation needs a length; pass validation_steps=N (--validation-steps N)"
            )
        self.trainer  # noqa: B018 - built here, so a note on how trials train comes first

    # -- running ---------------------------------------------------------------------------
    def run_many(self, tasks: Sequence[TrialTask]) -> list[Trial | GridSpecError]:
        """Train several combinations (together where the trainer can); one outcome each:
        a ``Trial``, or the ``GridSpecError`` (a user mistake) that stopped it."""
        s = self.settings
        started = time.perf_counter()
        runs = [self._start(task) for task in tasks]
        try:
            for repeat in range(s.repeats):
                active = [r for r in runs if r.error is None]
                if not active:
                    break
                fits = [Fit(r.task, s.seed + repeat, repeat,
                            (*(r.hooks.callbacks(repeat) if r.hooks is not None else ()), *self._progress(r.task)))
                        for r in active]
                for run, fitted in zip(active, self.trainer.fit_all(fits)):
                    self._take(run, fitted)
            # the group's time is shared by the trials that trained in it: one whose model
            # function failed never joined (its failure took next to no time)
            trained = sum(run.built for run in runs) or len(runs)
            share = (time.perf_counter() - started) / trained
            results: list[Trial | GridSpecError] = []
            for run in runs:
                outcome = self._conclude(run, share if run.built else 0.0)
                if run.hooks is not None and isinstance(outcome, Trial):
                    outcome = self._finish_hooks(run, outcome)
                results.append(outcome)
            return results
        finally:
            for run in runs:
                if run.hooks is not None:
                    run.hooks.release()

    def _progress(self, task: TrialTask) -> list[Any]:
        if self.progress is None:
            return []
        from gridspec.training.hooks import progress_callback

        return [progress_callback(task.number, task.epochs, self.progress, self.progress_batches)]

    def _start(self, task: TrialTask) -> _Run:
        s = self.settings
        earlier, spent = continuation.earlier_run(s, task, held=self.trainer.holds)
        if task.start_epoch and earlier is None:  # no checkpoint: retrain from scratch
            task = attrs.evolve(task, start_epoch=0)
        hooks = None
        if s.folders.save_dir or s.folders.tensorboard_dir:
            from gridspec.training.hooks import TrialHooks  # save_best / tensorboard_dir

            hooks = TrialHooks(s, task, self.grid.space)
        return _Run(task, earlier, spent, hooks)

    @staticmethod
    def _take(run: _Run, outcome: FitOutcome) -> None:
        run.fused_with.update(outcome.fused_with)
        run.built = run.built and outcome.built
        if outcome.error is not None:
            if isinstance(outcome.error, KeyboardInterrupt):
                raise outcome.error
            run.error = outcome.error
        else:
            assert outcome.history is not None
            run.histories.append(outcome.history)

    def _finish_hooks(self, run: _Run, trial: Trial) -> Trial:
        """A trial's files (save_best's model, its TensorBoard session). A model that can't be
        saved fails that feature, said once, never the trial or the search."""
        try:
            run.hooks.finish(trial)
        except GridSpecError as exc:
            if not self._unsaved:  # one note: the next trials' models fail the same way
                self._unsaved = True
                self.note(" ".join(str(exc).split()) + "; the search goes on without saving models")
        return trial

    def _conclude(self, run: _Run, share: float) -> Trial | GridSpecError:
        s = self.settings
        task = run.task
        fused_with = tuple(sorted(run.fused_with - {task.number}))
        try:
            if run.error is not None:
                raise run.error
            history = continuation.concat_history(run.earlier, _mean_history(run.histories))
            curve = history.get(s.objective)
            if curve is None:
                raise _missing_objective(fused_with, GridSpecError(
                    f"objective {s.objective!r} is not in the training history; the keys there "
                    f"are {', '.join(sorted(history)) or 'none'} (pass objective=<one of them>, "
                    f"or compile the model with the metric)"
                ))
            for epoch, value in enumerate(curve, start=1):
                if not math.isfinite(value):
                    raise NonFiniteObjective(f"objective {s.objective} was {value} at epoch {epoch}")
        except KeyboardInterrupt:
            raise
        except GridSpecError as exc:
            return exc
        except Exception as exc:
            return failed_trial(task, exc, run.spent + share,
                                _mean_history(run.histories) if run.histories else None, fused_with)
        best = best_of(curve, s.direction)
        assert best is not None  # every value is finite and there is at least one epoch
        score, best_epoch = best
        duration = run.spent + share
        continuation.remember(s, task.number, history, duration)
        return Trial(
            number=task.number,
            params=task.params,
            status=TrialStatus.COMPLETE,
            score=score,
            history=history,
            best_epoch=best_epoch,
            epochs=len(curve),
            duration=duration,
            fused_with=fused_with,
        )
