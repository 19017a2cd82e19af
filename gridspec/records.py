"""The records the trial runner and the trainers share: what to train, how, and with what.

Both sides of the trainer seam import this module and nothing of each other: the trial
runner (``gridspec.trial``) makes a ``TrainingContext`` once per process where trials run,
and a trainer (``gridspec.training``) is built as ``Trainer(context)`` and reads only it.
Executors see only ``TrialTask``. Plain data: no Keras, nothing above the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from gridspec.objective import Objective
from gridspec.settings import DEFAULT_CACHE_BYTES, FUSE_AUTO, SearchSettings

if TYPE_CHECKING:  # annotations only: the definitions and the data sit above this layer
    from gridspec.data import Sources
    from gridspec.decorators import GridFunction

__all__ = ["RunFolders", "TrainingContext", "TrialSettings", "TrialTask"]


@attrs.frozen
class TrialTask:
    """What to run, as plain data: the combination, its number and the epoch budget.

    ``start_epoch`` > 0 continues an earlier run of the same combination (halving).
    """

    number: int
    params: Mapping[str, Any]
    epochs: int
    start_epoch: int = 0


@attrs.frozen
class RunFolders:
    """Where a search's trials leave files. The search decides the names when it plans (so a
    worker gets them with everything else) and nothing is created until a trial writes."""

    # Where a trial keeps its model after each run so a later task with start_epoch > 0
    # continues it (halving). In-process and worker processes share it; each Ray worker
    # uses a folder of its own, and checkpoints travel with results and tasks (executors/ray.py).
    checkpoint_dir: str | None = None
    save_dir: str | None = None  # where a COMPLETE trial leaves its best-epoch model (save_best)
    tensorboard_dir: str | None = None  # one TensorBoard run per trial under it
    # Write a continuing model's checkpoint only when the trainer lets go of the model (or a
    # trial must train alone): set when trials run in the search's own process and no journal
    # could resume them, so nothing outside this process can need the file sooner.
    lazy_checkpoints: bool = False


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
    fuse: int | str = FUSE_AUTO  # group size for fused training; 1 = Keras fit, one at a time
    folders: RunFolders = RunFolders()

    @classmethod
    def from_search(cls, settings: SearchSettings, objective: Objective,
                    folders: RunFolders = RunFolders()) -> TrialSettings:
        """What a trial needs of a search's checked settings (``folders``: none by default,
        as for ``refit``, which leaves no files)."""
        s = settings
        return cls(
            objective=objective.name,
            direction=objective.direction,
            steps_per_epoch=s.steps_per_epoch,
            validation_steps=s.validation_steps,
            seed=s.seed,
            repeats=s.repeats,
            cache_bytes=s.cache_bytes,
            keras_verbose=s.keras_verbose,
            fuse=s.fuse,
            folders=folders,
        )


@attrs.frozen
class TrainingContext:
    """Everything a trainer may read, made once where trials run; a trainer changes none of it.

    ``distribute`` is None or the ``tf.distribute`` strategy itself (``"mirrored"`` is
    resolved when the context is made, in the process that trains). ``note`` says something
    once per search. The group key of a fit is ``sources.key(params)``: only fits that read
    the same batches may train together.
    """

    grid: GridFunction
    sources: Sources
    settings: TrialSettings
    callbacks: tuple[Any, ...]
    distribute: Any
    note: Callable[[str], None]
