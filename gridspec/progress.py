"""Progress events of a search and their one-line text form.

The engine emits events; whoever asked for progress decides what to do with them. The CLI
prints the lines; ``search(verbose=1)`` prints them too, on request; the default is silence.
The lines read the same in a terminal and a log file: no colours, no carriage returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs

from gridspec.result import SearchResult, Trial, TrialStatus
from gridspec.values import display_params

__all__ = ["Event", "Printer", "SearchFinished", "SearchStarted", "TrialFinished", "TrialStarted", "Note"]


@attrs.frozen
class SearchStarted:
    total: int  # trials this run will train
    size: int  # combinations in the grid
    objective: str
    direction: str
    strategy: str
    description: str  # the grid's shape


@attrs.frozen
class TrialStarted:
    position: int  # 1-based: "Model i of N"
    total: int
    number: int
    params: Mapping[str, Any]
    epochs: int
    start_epoch: int = 0


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


Event = SearchStarted | TrialStarted | TrialFinished | Note | SearchFinished


def _params(params: dict[str, Any]) -> str:
    return display_params(params)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_event(event: Event) -> str | None:
    """The text line for an event, or None for events that print nothing."""
    if isinstance(event, SearchStarted):
        what = f"{event.total} of {event.size:,}" if event.total != event.size else f"{event.total}"
        noun = "combination" if event.total == event.size == 1 else "combinations"
        better = "higher is better" if event.direction == "max" else "lower is better"
        return (
            f"Searching {what} {noun} ({event.strategy}): {event.description}; "
            f"objective {event.objective} ({event.direction}: {better})"
        )
    if isinstance(event, TrialStarted):
        return None  # the finished line carries everything; one line per trial
    if isinstance(event, TrialFinished):
        t = event.trial
        head = f"Model {event.position} of {event.total}... trial {t.number} {_params(t.params)}"
        if t.status is TrialStatus.FAILED:
            body = f"FAILED: {' '.join((t.error or '').split())}"  # one line per trial
        else:
            body = f"score {t.score:.6g} (epoch {t.best_epoch}/{t.epochs})"
            if t.status is TrialStatus.PRUNED:
                body += " pruned"
        eta = f", ETA {format_duration(event.eta)}" if event.eta is not None and event.position < event.total else ""
        return f"{head} {body} in {format_duration(t.duration)}{eta}"
    if isinstance(event, Note):
        return event.text
    if isinstance(event, SearchFinished):
        return None
    return None


class Printer:
    """Writes each event's line to a stream, flushed, so a log file follows live."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        line = format_event(event)
        if line is not None:
            stream = self.stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()


def reporter(verbose: int | bool | Callable[[Event], None] | None) -> Callable[[Event], None] | None:
    """``verbose`` as given to ``search()``: 0 silent, 1 progress lines, or a callable."""
    if callable(verbose):
        return verbose
    return Printer() if verbose else None
