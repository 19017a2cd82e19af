"""The best model file of a search (``save_best``): which trial's model is kept on disk.

Owns the decision, made in the parent process because only it sees every trial: each
COMPLETE trial leaves its best-epoch model in a staging folder next to ``save_best``
(written by ``gridspec.training.hooks`` wherever the trial ran); when a trial beats the best so
far, its file atomically replaces ``save_best`` (``os.replace``, same filesystem); every other
staged file is deleted at once. Disk use stays at ``save_best`` plus one staged file per
trial in flight. Knows no Keras: it moves files and compares scores.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from gridspec.errors import GridSpecError
from gridspec.result import Trial, TrialStatus, better

__all__ = ["BestModelFile", "check_save_best", "make_staging", "staged_model_path", "staging_folder"]


def staged_model_path(staging: str, number: int) -> str:
    """Where trial ``number`` leaves its model for the parent to keep or delete."""
    return os.path.join(staging, f"trial-{number}.keras")


def staging_folder(path: str) -> str:
    """A search's own staging folder for ``save_best`` (an absolute path): next to it, so
    that ``os.replace`` stays on one filesystem (atomic). Only named: the first trial that
    saves creates it (``make_staging``), ``BestModelFile.close`` removes it."""
    return os.path.join(os.path.dirname(path), f".gridspec-staging-{uuid.uuid4().hex[:12]}")


def make_staging(staging: str) -> None:
    os.makedirs(staging, exist_ok=True)


def check_save_best(path: Any) -> str:
    """Validate ``save_best`` before anything trains; return it as an absolute path."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise GridSpecError(
            f"save_best must be a file path ending in .keras, such as save_best='best.keras' "
            f"(got save_best={path!r})"
        )
    text = os.fspath(path)
    if not text.endswith(".keras"):
        raise GridSpecError(
            f"save_best must be a file path ending in .keras, Keras' model format "
            f"(got save_best={text!r}); for example save_best={os.path.splitext(text)[0] + '.keras'!r}"
        )
    absolute = os.path.abspath(text)
    folder = os.path.dirname(absolute)
    if not os.path.isdir(folder):
        raise GridSpecError(
            f"save_best={text!r} is in a folder that does not exist ({folder}); "
            f"create it first, or choose a path in an existing folder"
        )
    if os.path.isdir(absolute):
        raise GridSpecError(f"save_best={text!r} is a folder; give a file path ending in .keras")
    if not os.access(folder, os.W_OK):
        raise GridSpecError(f"save_best={text!r} is in a folder that is not writable ({folder})")
    return absolute


class BestModelFile:
    """``save_best``: keeps the model of the best COMPLETE trial seen so far.

    Ties go to the lower trial number, as in ``SearchResult.ranked()``, so the file always
    holds ``result.best``'s model whatever order parallel trials finish in.
    """

    def __init__(self, path: str, direction: str, staging: str | None = None) -> None:
        self.path = check_save_best(path)
        self.direction = direction
        self.best: tuple[float, int] | None = None  # (score, trial number) of the file's model
        self.staging = staging if staging is not None else staging_folder(self.path)

    def _beats(self, trial: Trial) -> bool:
        assert trial.score is not None
        if self.best is None:
            return True
        score, number = self.best
        return better(trial.score, score, self.direction) or (trial.score == score and trial.number < number)

    def offer(self, trial: Trial) -> bool:
        """Keep the trial's staged model if it is the best so far; delete it otherwise.

        A COMPLETE trial with no staged model is one resumed from a journal: if ``save_best``
        already exists (left by the run that trained it) and the trial beats the best so
        far, it counts as the file's model, so that worse trials of this run don't replace it.
        """
        staged = staged_model_path(self.staging, trial.number)
        if not os.path.exists(staged):
            if (trial.status is TrialStatus.COMPLETE and trial.score is not None
                    and os.path.exists(self.path) and self._beats(trial)):
                self.best = (trial.score, trial.number)
            return False
        if trial.status is TrialStatus.COMPLETE and trial.score is not None and self._beats(trial):
            os.replace(staged, self.path)
            self.best = (trial.score, trial.number)
            return True
        os.remove(staged)
        return False

    def close(self) -> None:
        """Remove the staging folder (and any file a trial left there unclaimed)."""
        shutil.rmtree(self.staging, ignore_errors=True)
