"""The Keras side of what a trial leaves behind: its best-epoch model and its TensorBoard run.

``TrialHooks`` is built per trial by the trial runner (in whichever process runs the
trial) when ``save_best`` or ``tensorboard_dir`` is set: it hands ``fit`` extra callbacks
and, once the trial is classified, writes the trial's files. A COMPLETE trial's model, with
the weights of the epoch its score comes from, goes to a per-trial file in the search's
staging folder; which of those files becomes ``save_best`` is decided by the parent process
(``gridspec.artifacts``), the only one that knows the best trial so far.

With ``repeats > 1`` the score comes from the mean curve of the repeats, so the saved model
is the first repeat's (trained with ``seed``), restored to the weights of that mean curve's
best epoch; that needs the first repeat's weights of every epoch in memory until the trial
ends. With one repeat only the best epoch's weights are kept.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from typing import Any

import keras

from gridspec.artifacts import make_staging, staged_model_path
from gridspec.errors import GridSpecError
from gridspec.result import Trial, TrialStatus, better

__all__ = ["BatchProgress", "BestEpochWeights", "CurveWriter", "EpochProgress", "ModelGrabber", "TrialHooks", "progress_callback"]


class BestEpochWeights(keras.callbacks.Callback):
    """Keeps in memory the weights of the best epoch of ``objective`` (or of every epoch)."""

    def __init__(self, objective: str, direction: str, every_epoch: bool = False) -> None:
        super().__init__()
        self.objective = objective
        self.direction = direction
        self.every_epoch = every_epoch
        self.best: float | None = None
        self.snapshots: dict[int, list[Any]] = {}  # 1-based epoch -> weights

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.objective)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.every_epoch:
            self.snapshots[epoch + 1] = self.model.get_weights()
        elif self.best is None or better(value, self.best, self.direction):
            # The same rule as ``best_of``: strictly better, so the earliest best epoch wins.
            self.best = value
            self.snapshots = {epoch + 1: self.model.get_weights()}

    def save(self, path: str, epoch: int | None) -> None:
        """Write the model with the weights of ``epoch`` (the last kept one if it wasn't kept)."""
        if not self.snapshots:
            return
        weights = self.snapshots.get(epoch) if epoch is not None else None
        if weights is None:  # e.g. a best epoch from an earlier halving rung
            weights = self.snapshots[max(self.snapshots)]
        self.model.set_weights(weights)
        self.model.save(path)

    def release(self) -> None:
        self.snapshots = {}
        self.set_model(None)


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class EpochProgress(keras.callbacks.Callback):
    """Sends an ``EpochEnded`` event as each epoch of trial ``number`` ends.

    Epoch hooks only, so Keras keeps dispatching batches asynchronously. A display that
    fails must not fail the trial: a sending error is dropped.
    """

    def __init__(self, number: int, epochs: int, send: Callable[[Any], None]) -> None:
        super().__init__()
        self.number = number
        self.epochs = epochs
        self.send = send
        self.epoch = 1  # 1-based, the epoch in progress

    def _send(self, event: Any) -> None:
        try:
            self.send(event)
        except Exception:  # noqa: BLE001 - progress is a courtesy; the trial goes on
            pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from gridspec.progress import EpochEnded

        self._send(EpochEnded(self.number, epoch + 1, self.epochs, _floats(logs)))


class BatchProgress(EpochProgress):
    """``EpochProgress`` plus a ``BatchEnded`` event at most every ``interval`` seconds.

    A batch hook makes Keras wait for each batch's logs, so it is added only for a display
    that shows batches (the live one), never for plain lines or worker processes.
    """

    interval = 0.25

    def __init__(self, number: int, epochs: int, send: Callable[[Any], None]) -> None:
        super().__init__(number, epochs, send)
        self._last = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        from gridspec.progress import BatchEnded

        steps = self.params.get("steps") if self.params else None
        self._send(BatchEnded(self.number, self.epoch, batch + 1, steps, _floats(logs)))


def progress_callback(number: int, epochs: int, send: Callable[[Any], None], batches: bool) -> EpochProgress:
    """The callback a trial runner adds to ``fit`` when progress is asked for."""
    return (BatchProgress if batches else EpochProgress)(number, epochs, send)


class CurveWriter(keras.callbacks.Callback):
    """A trial's curves for TensorBoard, as Keras's ``TensorBoard`` callback logs them at each
    epoch's end (``epoch_loss``, ``epoch_learning_rate`` under ``train/``, the ``val_`` logs
    under ``validation/``), written with ``gridspec.tb``'s writer: no TensorFlow needed."""

    def __init__(self, run: str) -> None:
        super().__init__()
        self.run = run
        self._files: dict[str, Any] = {}

    def _file(self, name: str) -> Any:
        from gridspec.tb import EventFile

        if name not in self._files:
            self._files[name] = EventFile(os.path.join(self.run, name))
        return self._files[name]

    def _learning_rates(self) -> dict[str, float]:
        optimizer: Any = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
        if hasattr(optimizer, "optimizers"):
            return {f"learning_rate_{o.name}": float(keras.ops.convert_to_numpy(o.learning_rate))
                    for o in optimizer.optimizers}
        if isinstance(optimizer, keras.optimizers.Optimizer):
            return {"learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate))}
        return {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = _floats(logs)
        train = {k: v for k, v in values.items() if not k.startswith("val_")}
        if train:
            train.update(self._learning_rates())
        for folder, curves in (("train", train), ("validation", {k[4:]: v for k, v in values.items()
                                                                 if k.startswith("val_")})):
            if curves:
                events = self._file(folder)
                for name, value in curves.items():
                    events.scalar(f"epoch_{name}", value, epoch)
                events.flush()  # a running search's curves show as its epochs end

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for events in self._files.values():
            events.close()
        self._files = {}


class ModelGrabber(keras.callbacks.Callback):
    """Holds on to the model ``fit`` trained, for ``refit`` to return it."""


class TrialHooks:
    """The extra callbacks of one trial and the files it writes when it ends."""

    def __init__(self, settings: Any, task: Any, space: Any) -> None:
        self.settings = settings
        self.task = task
        self.axes = {axis.name: axis.values for axis in space.axes}
        self.started = time.time()
        self.keeper: BestEpochWeights | None = None
        self.run_dir: str | None = None
        if settings.folders.tensorboard_dir:
            from gridspec import tb

            self.run_dir = tb.run_dir(settings.folders.tensorboard_dir, task.number, space.product_size)
            tb.start_session(self.run_dir, task.params, self.axes, settings.objective, self.started)

    def callbacks(self, repeat: int) -> list[Any]:
        """Callbacks for ``fit`` of one repeat: only the first repeat is saved and logged."""
        if repeat != 0:
            return []
        s = self.settings
        out: list[Any] = []
        if s.folders.save_dir:
            self.keeper = BestEpochWeights(s.objective, s.direction, every_epoch=s.repeats > 1)
            out.append(self.keeper)
        if self.run_dir:
            out.append(CurveWriter(self.run_dir))
        return out

    def finish(self, trial: Trial) -> None:
        """Write the trial's HParams session and, if it completed, its best-epoch model."""
        if self.run_dir:
            from gridspec import tb

            tb.end_session(self.run_dir, trial)
        if self.keeper is not None and trial.status is TrialStatus.COMPLETE:
            staging = self.settings.folders.save_dir
            path = staged_model_path(staging, trial.number)
            try:
                make_staging(staging)
                self.keeper.save(path, trial.best_epoch)
            except Exception as exc:
                with contextlib.suppress(OSError):  # a half-written file must not become save_best
                    os.remove(path)
                raise GridSpecError(
                    f"save_best could not save trial {trial.number}'s model as a .keras file: "
                    f"{type(exc).__name__}: {exc}; custom layers need get_config() and "
                    f"@keras.saving.register_keras_serializable(), or leave save_best unset"
                ) from exc

    def release(self) -> None:
        if self.keeper is not None:
            self.keeper.release()
            self.keeper = None
