"""Progress events of a search: plain data the engine (and the trial runner) emits.

The engine emits events; whoever asked for progress decides what to do with them. The
displays (plain lines, the live terminal view) live with the command line, in
``gridspec.display``; this module knows none of them and imports nothing above the records.

- ``SearchStarted``, ``TrialStarted``, ``TrialFinished``, ``Note``, ``SearchFinished``: the
  search loop's events, in the search process.
- ``EpochEnded`` and ``BatchEnded``: a running trial's training progress, sent by a Keras
  callback that the trial runner adds when progress is asked for (``BatchEnded`` is
  throttled, and only sent to displays that ask for it). From worker processes they travel
  back to the search process with the trial's results (per epoch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from gridspec.result import SearchResult, Trial

__all__ = [
    "BatchEnded", "EpochEnded", "Event", "Note", "SearchFinished", "SearchStarted",
    "TrialFinished", "TrialStarted",
]


@attrs.frozen
class SearchStarted:
    total: int  # trials this run will train
    size: int  # combinations in the grid
    objective: str
    direction: str
    strategy: str
    description: str  # the grid's shape
    epochs: int | None = None  # the search's epochs (None: each combination's, from an axis)
    planned_epochs: int | None = None  # epochs summed over the trials to train (None: unknown)


@attrs.frozen
class TrialStarted:
    position: int  # 1-based: "Model i of N" (within the rung for halving)
    total: int
    number: int
    params: Mapping[str, Any]
    epochs: int
    start_epoch: int = 0
    rung: int | None = None  # halving, asha, hyperband: the rung (numbered across brackets)
    group: tuple[int, ...] = ()  # the trials sent to train together with it, itself included


@attrs.frozen
class EpochEnded:
    """Trial ``number`` finished epoch ``epoch`` (1-based) of ``epochs``; ``logs`` are Keras's."""

    number: int
    epoch: int
    epochs: int
    logs: dict[str, float]


@attrs.frozen
class BatchEnded:
    """Trial ``number`` is at batch ``batch`` (1-based) of ``steps`` (None: unknown) in ``epoch``."""

    number: int
    epoch: int
    batch: int
    steps: int | None
    logs: dict[str, float]


@attrs.frozen
class TrialFinished:
    position: int
    total: int
    trial: Trial
    eta: float | None  # seconds left, once a trial has finished


@attrs.frozen
class Note:
    """A line of information from the engine or an extension (resume, rung promotions...)."""

    text: str


@attrs.frozen
class SearchFinished:
    result: SearchResult


Event = SearchStarted | TrialStarted | EpochEnded | BatchEnded | TrialFinished | Note | SearchFinished

_MOVED = ("Printer", "format_event", "format_duration", "reporter")


def __getattr__(name: str) -> Any:
    """The displays moved to ``gridspec.display``; old imports keep working, lazily."""
    if name in _MOVED:
        from gridspec import display

        return getattr(display, name)
    raise AttributeError(f"module 'gridspec.progress' has no attribute {name!r}")
