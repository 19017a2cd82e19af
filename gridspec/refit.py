"""``SearchResult.refit``: rebuild the best combination and train it again, returning the model.

Owns the settings' defaults (the search's own, from ``result.context``) and the
conveniences of refitting (an in-memory ``(x, y)`` pair as data). Training goes through the
same ``TrialRunner`` as the search, so the model is built, seeded and fed exactly as a trial
is. Imports Keras only through the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gridspec.errors import GridSpecError

__all__ = ["refit"]

_SEARCH = object()  # "as the search did"


def _factory(kind: str, choice: Any, default: Any, module: Any) -> Callable[..., Any] | None:
    if choice is _SEARCH:
        return default
    if isinstance(choice, tuple) and len(choice) in (2, 3):
        arrays = choice
        return lambda: arrays  # an in-memory (x, y) pair: used as a factory's return value
    from gridspec.registry import scan

    return scan(module).factory(kind, choice)


def _positive(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise GridSpecError(f"{name} must be a positive integer or None (got {name}={value!r})")


def refit(
    result: Any,
    *,
    epochs: int | None = None,
    steps_per_epoch: Any = _SEARCH,
    validation_steps: Any = _SEARCH,
    train: Any = _SEARCH,
    val: Any = _SEARCH,
    seed: int | None = None,
    callbacks: Sequence[Any] | None = None,
    verbose: int = 0,
) -> Any:
    """Build ``result.best``'s combination, train it, and return the ``keras.Model``.

    Every setting defaults to the search's. ``train`` / ``val`` take what ``search()`` takes
    (a factory, a factory's name, ``None`` for no validation) or an in-memory ``(x, y)``
    pair, e.g. the full data set. The model's ``history`` attribute holds the curves.
    """
    best = result.best  # SearchError when no trial completed
    context = result.context
    if context is None:
        raise GridSpecError(
            "refit() needs the result of search() in this Python session: a result read back "
            "from JSON or a journal does not know its model function; run "
            f"build(**{best.params!r}) and fit it yourself, or search again"
        )
    from gridspec.engine import _module_of
    from gridspec.keras_hooks import ModelGrabber
    from gridspec.trial import TrialRunner, TrialSettings, TrialTask
    from gridspec.data import DEFAULT_CACHE_BYTES

    grid = context.grid
    settings = context.settings
    epochs = settings["epochs"] if epochs is None else epochs
    _positive("epochs", epochs)
    if epochs is None:
        raise GridSpecError("epochs must be a positive integer (got epochs=None)")
    steps = settings["steps_per_epoch"] if steps_per_epoch is _SEARCH else steps_per_epoch
    vsteps = settings["validation_steps"] if validation_steps is _SEARCH else validation_steps
    _positive("steps_per_epoch", steps)
    _positive("validation_steps", vsteps)
    seed = settings["seed"] if seed is None else seed
    module = _module_of(grid)
    train_fn = _factory("train", train, settings["train"], module)
    val_fn = _factory("val", val, settings["val"], module)
    if train_fn is None:
        raise GridSpecError("train=None: refit needs training data; pass a factory, its name or an (x, y) pair")
    cache_data = settings.get("cache_data", True)
    run_settings = TrialSettings(
        objective=settings["objective"],
        direction=settings["direction"],
        steps_per_epoch=steps,
        validation_steps=vsteps,
        seed=seed,
        cache_bytes=DEFAULT_CACHE_BYTES if cache_data is True else int(cache_data or 0),
        keras_verbose=verbose,
    )
    extra = tuple(settings.get("callbacks", ())) if callbacks is None else tuple(callbacks)
    runner = TrialRunner(grid, train_fn, val_fn, run_settings, callbacks=extra)
    runner.prepare(best.params)
    grabber = ModelGrabber()
    runner._fit_once(TrialTask(best.number, dict(best.params), epochs), seed, (grabber,))
    return grabber.model
