"""Run one trial: build the model for a combination, fit it on the shared data, score it.

Owns the only Keras-facing training code and the single function that classifies a
trial's outcome (``failed_trial``): exceptions and non-finite objectives become a FAILED
``Trial`` with the traceback kept; ``KeyboardInterrupt`` passes through; user mistakes
(``GridSpecError``: bad data, a model function that returns no compiled model, an objective
missing from the history) are raised for the engine to decide on. Knows nothing of the
strategy, the executor or the journal: it gets a ``TrialTask`` (plain data) and returns a
``Trial``.
"""

from __future__ import annotations

import math
import time
import traceback as tb
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from gridspec import continuation
from gridspec.data import DEFAULT_ARRAY_BATCH_SIZE, DEFAULT_CACHE_BYTES, Source
from gridspec.decorators import GridFunction, accepted_params, did_you_mean, required_params, select
from gridspec.errors import GridError, GridSpecError
from gridspec.result import Trial, TrialStatus, best_of

__all__ = ["NonFiniteObjective", "TrialRunner", "TrialSettings", "TrialTask", "failed_trial"]


class NonFiniteObjective(ArithmeticError):
    """The objective became NaN or infinite: the trial diverged."""


@attrs.frozen
class TrialTask:
    """What to run, as plain data: the combination, its number and the epoch budget.

    ``start_epoch`` > 0 continues an earlier run of the same combination (halving).
    """

    number: int
    params: dict[str, Any]
    epochs: int
    start_epoch: int = 0


@attrs.frozen
class TrialSettings:
    """The per-search settings every trial shares (plain data, picklable)."""

    objective: str
    direction: str
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    seed: int = 0
    repeats: int = 1
    cache_bytes: int = DEFAULT_CACHE_BYTES
    keras_verbose: int = 0
    save_dir: str | None = None  # where a COMPLETE trial leaves its best-epoch model (save_best)
    tensorboard_dir: str | None = None  # one TensorBoard run per trial under it
    # Where a trial keeps its model after each run so a later task with start_epoch > 0
    # continues it (halving). A folder every executor's workers can read and write.
    checkpoint_dir: str | None = None


def failed_trial(task: TrialTask, exc: BaseException, duration: float, history: dict[str, list[float]] | None = None) -> Trial:
    """The one place a failure becomes a ``Trial``: type, message and traceback kept."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
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
    )


def _keras() -> Any:
    import keras

    return keras


def _mean_history(histories: Sequence[Mapping[str, Sequence[float]]]) -> dict[str, list[float]]:
    if len(histories) == 1:
        return {k: [float(v) for v in vs] for k, vs in histories[0].items()}
    keys = [k for k in histories[0] if all(k in h for h in histories)]
    out: dict[str, list[float]] = {}
    for key in keys:
        length = min(len(h[key]) for h in histories)
        out[key] = [float(sum(h[key][i] for h in histories) / len(histories)) for i in range(length)]
    return out


class TrialRunner:
    """Turns ``TrialTask``s into ``Trial``s for one search, in the current process.

    Built once per search (or once per worker process): it resolves the data sources,
    probing each factory once, and checks that every axis is used by someone.
    """

    # Who hears a running trial's progress (``gridspec.progress.EpochEnded``, and with
    # ``progress_batches`` a throttled ``BatchEnded``): set by whoever asked for progress.
    progress: Callable[[Any], None] | None = None
    progress_batches = False

    def __init__(
        self,
        grid: GridFunction,
        train: Callable[..., Any],
        val: Callable[..., Any] | None,
        settings: TrialSettings,
        callbacks: Sequence[Any] = (),
        distribute: Any = None,
    ) -> None:
        self.grid = grid
        self.train_fn = train
        self.val_fn = val
        self.settings = settings
        self.callbacks = tuple(callbacks)
        self.distribute = distribute
        self._sources: dict[tuple[str, str], Source] = {}
        self.check_factories()

    # -- validation ------------------------------------------------------------------------
    def check_factories(self) -> None:
        """Every factory parameter without a default must be a grid axis."""
        axes = self.grid.space.names
        for kind, fn in (("train", self.train_fn), ("val", self.val_fn)):
            if fn is None:
                continue
            for name in required_params(fn):
                if name not in axes:
                    raise GridError(
                        f"data factory {_label(fn, kind)} has a parameter {name!r} that is not a "
                        f"grid axis; a factory takes no arguments or only grid axes "
                        f"(axes: {', '.join(axes)}){did_you_mean(name, axes)}"
                    )

    def check_axes(self, arrays: bool) -> None:
        """Every axis must reach the model function or a data factory (or, for in-memory
        arrays, be ``batch_size``, which gridspec batches them by)."""
        axes = self.grid.space.names
        model_names, model_kw = accepted_params(self.grid.fn)
        users = set(axes) if model_kw else set(model_names)
        for fn in (self.train_fn, self.val_fn):
            if fn is not None:
                names, var_kw = accepted_params(fn)
                users |= set(axes) if var_kw else set(names)
        if arrays:
            users.add("batch_size")
        for axis in axes:
            if axis not in users:
                value = list(self.grid.space.axes[axes.index(axis)].values)
                raise GridError(
                    f"{self.grid.fn.__qualname__}() has no parameter {axis!r} for grid axis "
                    f"{axis}={value!r}, and no data factory takes it either"
                    f"{did_you_mean(axis, model_names)}"
                )

    def source(self, kind: str, params: Mapping[str, Any]) -> Source | None:
        fn = self.train_fn if kind == "train" else self.val_fn
        if fn is None:
            return None
        args = select(fn, params)
        key = (kind, repr(sorted(args.items())))
        source = self._sources.get(key)
        if source is None:
            source = Source(fn, kind, args, _label(fn, kind), self.settings.cache_bytes)
            self._sources[key] = source
        return source

    def prepare(self, params: Mapping[str, Any]) -> None:
        """Probe the data once before anything trains, so data mistakes surface first."""
        train = self.source("train", params)
        val = self.source("val", params)
        assert train is not None
        self.check_axes(arrays=train.form == "arrays")
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

    # -- running ---------------------------------------------------------------------------
    def _build(self, params: Mapping[str, Any]) -> Any:
        keras = _keras()
        model = self.grid.fn(**select(self.grid.fn, params))
        name = self.grid.fn.__qualname__
        if not isinstance(model, keras.Model):
            raise GridError(
                f"{name}() must return a compiled keras.Model (got {type(model).__name__}); "
                f"end it with model.compile(...) and return model"
            )
        if not getattr(model, "compiled", False):
            raise GridError(
                f"{name}() returned a keras.Model that is not compiled; call "
                f"model.compile(optimizer=..., loss=...) before returning it"
            )
        return model

    def _fit_once(self, task: TrialTask, seed: int, extra_callbacks: Sequence[Any] = (),
                  repeat: int = 0) -> dict[str, list[float]]:
        keras = _keras()
        s = self.settings
        keras.utils.set_random_seed(seed)
        train = self.source("train", task.params)
        val = self.source("val", task.params)
        assert train is not None
        batch_size = int(task.params.get("batch_size", DEFAULT_ARRAY_BATCH_SIZE))
        if self.distribute is not None:
            if isinstance(self.distribute, str):  # "mirrored": made where the trial runs
                from gridspec.distribute import make_distribute

                self.distribute = make_distribute(self.distribute)
            with self.distribute.scope():
                model = self._build(task.params)
        else:
            model = self._build(task.params)
        saved = continuation.checkpoint_path(s, task.number, repeat)
        if task.start_epoch:
            model = continuation.restore(model, saved)
        try:
            train_data = train.training(task.epochs, s.steps_per_epoch, seed, batch_size)
            if task.start_epoch and s.steps_per_epoch:  # the batches a full run would see next
                train_data = train_data.skip(task.start_epoch * s.steps_per_epoch)
            val_data = val.validation(s.validation_steps, batch_size) if val is not None else None
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*ran out of data.*")
                try:
                    history = model.fit(
                        train_data,
                        epochs=task.epochs,
                        initial_epoch=task.start_epoch,
                        steps_per_epoch=s.steps_per_epoch,
                        validation_data=val_data,
                        callbacks=[*self.callbacks, *extra_callbacks, *self._progress(task)],
                        verbose=s.keras_verbose,
                        shuffle=False,  # the order is ours: the same for every trial
                    )
                except Exception:
                    train.raise_pending()
                    if val is not None:
                        val.raise_pending()
                    raise
            train.raise_pending()
            if val is not None:
                val.raise_pending()
            if saved is not None:
                continuation.keep(model, saved)
            return {k: [float(v) for v in vs] for k, vs in history.history.items()}
        finally:
            del model
            keras.backend.clear_session(free_memory=False)

    def _progress(self, task: TrialTask) -> list[Any]:
        if self.progress is None:
            return []
        from gridspec.keras_hooks import progress_callback

        return [progress_callback(task.number, task.epochs, self.progress, self.progress_batches)]

    def run(self, task: TrialTask) -> Trial:
        """Train one combination; failures come back as a FAILED trial, user mistakes raise."""
        if not (self.settings.save_dir or self.settings.tensorboard_dir):
            return self._run(task, None)
        from gridspec.keras_hooks import TrialHooks  # save_best / tensorboard_dir: Keras callbacks

        hooks = TrialHooks(self.settings, task, self.grid.space)
        try:
            trial = self._run(task, hooks)
            hooks.finish(trial)
        finally:
            hooks.release()
        return trial

    def _run(self, task: TrialTask, hooks: Any) -> Trial:
        s = self.settings
        started = time.perf_counter()
        histories: list[dict[str, list[float]]] = []
        earlier, spent = continuation.earlier_run(s, task)
        if task.start_epoch and earlier is None:  # no checkpoint: retrain from scratch
            task = attrs.evolve(task, start_epoch=0)
        try:
            for repeat in range(s.repeats):
                extra = hooks.callbacks(repeat) if hooks is not None else ()
                histories.append(self._fit_once(task, s.seed + repeat, extra, repeat))
            history = continuation.concat_history(earlier, _mean_history(histories))
            curve = history.get(s.objective)
            if curve is None:
                raise GridSpecError(
                    f"objective {s.objective!r} is not in the training history; the keys there "
                    f"are {', '.join(sorted(history)) or 'none'} (pass objective=<one of them>, "
                    f"or compile the model with the metric)"
                )
            for epoch, value in enumerate(curve, start=1):
                if not math.isfinite(value):
                    raise NonFiniteObjective(f"objective {s.objective} was {value} at epoch {epoch}")
        except (KeyboardInterrupt, GridSpecError):
            raise
        except Exception as exc:
            return failed_trial(task, exc, time.perf_counter() - started,
                                _mean_history(histories) if histories else None)
        best = best_of(curve, s.direction)
        assert best is not None  # every value is finite and there is at least one epoch
        score, best_epoch = best
        duration = spent + time.perf_counter() - started
        continuation.remember(s, task.number, history, duration)
        return Trial(
            number=task.number,
            params=dict(task.params),
            status=TrialStatus.COMPLETE,
            score=score,
            history=history,
            best_epoch=best_epoch,
            epochs=len(curve),
            duration=duration,
        )


def _label(fn: Callable[..., Any], kind: str) -> str:
    from gridspec.decorators import factory_spec

    spec = factory_spec(fn)
    name = spec.name if spec is not None else getattr(fn, "__name__", repr(fn))
    return f"{name!r} ({kind}_data)"
