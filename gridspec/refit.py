"""``SearchResult.refit``: rebuild the best combination and train it again, returning the model.

Owns the conveniences of refitting (settings default to the search's own, an in-memory
``(x, y)`` pair as data). The search's ``SearchSettings`` are evolved with what the caller
changes, so every setting — ``distribute`` included — is the search's unless overridden,
and training goes through the same runner and trainer seam as a trial (built, seeded and
fed exactly as a trial is), with ``fuse=1``: Keras's own ``model.fit``, one model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gridspec.errors import GridSpecError
from gridspec.settings import check_positive

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
    from gridspec.records import TrialSettings, TrialTask
    from gridspec.registry import module_of
    from gridspec.training import Fit
    from gridspec.trial import TrialRunner

    grid, search = context.grid, context.settings
    check_positive("epochs", epochs, allow_none=True)
    changes: dict[str, Any] = {"keras_verbose": verbose, "fuse": 1, "repeats": 1}
    if epochs is not None:
        changes["epochs"] = epochs
    if steps_per_epoch is not _SEARCH:
        changes["steps_per_epoch"] = steps_per_epoch
    if validation_steps is not _SEARCH:
        changes["validation_steps"] = validation_steps
    if seed is not None:
        changes["seed"] = seed
    if callbacks is not None:
        changes["callbacks"] = tuple(callbacks)
    module = module_of(grid)
    changes["train"] = _factory("train", train, search.train, module)
    changes["val"] = _factory("val", val, search.val, module)
    if changes["train"] is None:
        raise GridSpecError("train=None: refit needs training data; pass a factory, its name or an (x, y) pair")
    s = search.evolve(**changes)  # every field's validator runs again
    runner = TrialRunner(grid, s.train, s.val, TrialSettings.from_search(s, context.objective),
                         callbacks=s.callbacks, distribute=s.distribute)
    runner.prepare(best.params)
    task = TrialTask(best.number, best.params, s.epochs)
    outcome = runner.trainer.fit_all([Fit(task, s.seed, keep_model=True)])[0]
    if outcome.error is not None:
        raise outcome.error
    return outcome.model
