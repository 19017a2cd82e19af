"""The reference trainer: each fit alone, through Keras's own ``model.fit`` (``fuse=1``).

Every faster path is tested against it, trial by trial and history key by history key.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras

from gridspec.records import TrainingContext
from gridspec.training import Fit, FitOutcome, continuation
from gridspec.training.models import build_model, datasets

__all__ = ["ReferenceTrainer", "fit_one"]


def fit_one(context: TrainingContext, fit: Fit) -> FitOutcome:
    """Build ``fit``'s model from its seed and train it with ``model.fit``: its history (and
    the model itself when ``fit.keep_model``)."""
    s = context.settings
    task = fit.task
    keep_model = fit.keep_model
    keras.utils.set_random_seed(fit.seed)
    model = build_model(context.grid, task.params, context.distribute)
    saved = continuation.checkpoint_path(s, task.number, fit.repeat)
    if task.start_epoch:
        model = continuation.restore(model, saved)
    try:
        train_data, val_data, sources = datasets(context, task, fit.seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            try:
                history = model.fit(
                    train_data,
                    epochs=task.epochs,
                    initial_epoch=task.start_epoch,
                    steps_per_epoch=s.steps_per_epoch,
                    validation_data=val_data,
                    callbacks=[*context.callbacks, *fit.callbacks],
                    verbose=s.keras_verbose,
                    shuffle=False,  # the order is ours: the same for every trial
                )
            finally:
                for source in sources:  # a factory's error inside tf.data, as gridspec's own
                    source.raise_pending()
        if saved is not None:
            continuation.keep(model, saved)
        curves = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        return FitOutcome(history=curves, model=model if keep_model else None)
    finally:
        if not keep_model:
            del model
            keras.backend.clear_session(free_memory=False)


class ReferenceTrainer:
    """One fit at a time, each through ``model.fit``."""

    group_size = 1

    def __init__(self, context: TrainingContext) -> None:
        self.context = context

    def holds(self, number: int, repeat: int, epoch: int) -> bool:
        return False  # every model is written to its checkpoint, never kept

    def fit_all(self, fits: Sequence[Fit]) -> list[FitOutcome]:
        outcomes = []
        for fit in fits:
            try:
                outcomes.append(fit_one(self.context, fit))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # classified by the trial runner
                outcomes.append(FitOutcome(error=exc))
        return outcomes
