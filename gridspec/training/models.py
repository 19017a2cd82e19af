"""Building a trial's model: the user's function, called as a trial calls it, and checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from gridspec.decorators import GridFunction, select
from gridspec.errors import GridError
from gridspec.records import TrainingContext, TrialTask

__all__ = ["build_model", "datasets"]


def build_model(grid: GridFunction, params: Mapping[str, Any], distribute: Any = None) -> Any:
    """The compiled ``keras.Model`` for ``params`` (built in ``distribute``'s scope if set).

    A return value that isn't a compiled model is a mistake in the definition (``GridError``),
    not a failed trial: it would fail every combination the same way.
    """
    if distribute is not None:
        with distribute.scope():
            return build_model(grid, params)
    model = grid.fn(**select(grid.fn, params))
    name = grid.fn.__qualname__
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


def datasets(context: TrainingContext, task: TrialTask, seed: int) -> tuple[Any, Any, list[Any]]:
    """What ``fit`` trains and validates on for ``task``, and their sources (whose
    ``raise_pending`` turns a factory's error inside tf.data into gridspec's own).

    On the TensorFlow backend both are ``tf.data.Dataset`` s; on the others, numpy
    ``keras.utils.PyDataset`` s that are also plain iterables of numpy batch tuples
    (``gridspec.feeds``), unless the factory itself returned a ``tf.data.Dataset``. A task
    that continues (``start_epoch``) reads the batches a full run would read from there on.
    """
    from gridspec.data import DEFAULT_ARRAY_BATCH_SIZE

    s = context.settings
    train = context.sources.get("train", task.params)
    val = context.sources.get("val", task.params)
    assert train is not None
    batch_size = int(task.params.get("batch_size", DEFAULT_ARRAY_BATCH_SIZE))
    train_data = train.training(task.epochs, s.steps_per_epoch, seed, batch_size, task.start_epoch)
    val_data = val.validation(s.validation_steps, batch_size) if val is not None else None
    return train_data, val_data, [src for src in (train, val) if src is not None]
