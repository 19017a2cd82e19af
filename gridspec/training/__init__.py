"""Training: the only Keras-facing code of a trial, behind one seam.

The trial runner (``gridspec.trial``) owns a trial's lifecycle — seeds, repeats,
continuation, scoring, failure classification — and hands the Keras part to a *trainer*,
built as ``Trainer(context)`` from a ``TrainingContext`` (``gridspec.records``: the grid,
the data, the settings, the callbacks, the distribute strategy and ``note``), which it
reads and never changes: ``fit_all(fits)`` trains a list of ``Fit``s (one model each: a
task, a seed, a repeat and that fit's own extra callbacks) and returns one ``FitOutcome``
per fit, in order. ``make_trainer(context)`` chooses the trainer.

- ``ReferenceTrainer`` (``reference.py``): every fit alone, through Keras's own
  ``model.fit``. It is the oracle: ``fuse=1``.
- ``FusedTrainer`` (``fused_trainer.py``): fits that read the same batches train together,
  one traced step for the group on TensorFlow (``fused.py``), one XLA program on JAX
  (``jax_group.py``), falling back to the reference for a group that can't be formed.
  Same histories, to float32 rounding (on a CPU, bit-identical on JAX).

A trainer that trains several fits together calls ``gridspec.interrupt.check_stop()`` in its
group loop before each epoch: after a first Ctrl-C (or SIGTERM) it raises ``StopAtEpochEnd``
(a ``KeyboardInterrupt``), which the trainer lets through; the engine then records none of
the group's members, and a resumed search trains them again. A fit trained alone needs no
check: it finishes and is recorded.

Nothing outside this package knows which trainer ran (``refit`` too goes through
``make_trainer``), and nothing outside it (and ``data.py``) imports Keras. Importing this
package imports no Keras either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from gridspec.records import TrainingContext, TrialTask
from gridspec.training.grouping import AUTO_GROUP_SIZE, JAX_AUTO_GROUP_SIZE, group_size_for, planned_group_size

__all__ = ["AUTO_GROUP_SIZE", "JAX_AUTO_GROUP_SIZE", "Fit", "FitOutcome", "Trainer", "group_size_for", "make_trainer", "planned_group_size"]

@attrs.frozen
class Fit:
    """One model to build and train: ``task`` (combination, epochs, start epoch), the
    ``seed`` it starts from, which ``repeat`` it is, and its own extra callbacks.
    ``keep_model``: the outcome carries the trained model (``refit`` returns it)."""

    task: TrialTask
    seed: int
    repeat: int = 0
    callbacks: tuple[Any, ...] = ()
    keep_model: bool = False


@attrs.frozen
class FitOutcome:
    """What a fit left: its history (as ``fit(...).history``) or the exception that ended it,
    the trial numbers of the other fits it trained together with, and the model when the
    fit asked to keep it."""

    history: Mapping[str, list[float]] | None = None
    error: BaseException | None = None
    fused_with: tuple[int, ...] = ()
    model: Any = None
    built: bool = True  # False: the model function failed, so the fit took no share of a group's time


class Trainer(Protocol):
    """Trains fits; ``group_size`` is how many fits it may train at once (1: alone; else
    ``grouping.group_size_for(fuse)``, the one place a group's size is decided). Built
    as ``Trainer(context)``; it reads the context and keeps its own state to itself."""

    group_size: int

    def __init__(self, context: TrainingContext) -> None: ...

    def fit_all(self, fits: Sequence[Fit]) -> list[FitOutcome]: ...

    def holds(self, number: int, repeat: int, epoch: int) -> bool:
        """Whether trial ``number``'s model (that repeat) is still in memory, ended at
        ``epoch``: a continuing fit may then start from it without a checkpoint file."""
        ...


def make_trainer(context: TrainingContext) -> Trainer:
    """The trainer ``context.settings.fuse`` asks for, where it can run; else the reference."""
    from gridspec.training.reference import ReferenceTrainer

    fuse = context.settings.fuse
    if fuse == 1 or context.distribute is not None:
        if fuse != 1:
            context.note(f"fuse={fuse!r}: every trial trains alone (distribute= spreads each trial over devices)")
        return ReferenceTrainer(context)
    from gridspec.training.fused_trainer import FusedTrainer, fusion_unavailable

    reason = fusion_unavailable()
    if reason is not None:
        context.note(f"fuse={fuse!r}: every trial trains alone ({reason})")
        return ReferenceTrainer(context)
    return FusedTrainer(context)
