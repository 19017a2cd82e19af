"""The plain-line display: one line per finished trial and per note, and a line as a group
of trials that train together starts and ends (with the group's time and the ETA).

The lines read the same in a terminal and a log file: no colours, no carriage returns.
They are also what the live display leaves behind once it closes.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any, TextIO

from gridspec.progress import Event, Note, SearchStarted, TrialFinished
from gridspec.result import TrialStatus
from gridspec.values import display_params

__all__ = ["Printer", "format_duration", "format_event"]


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
    """The text line for an event, or None for events that print nothing (trial starts,
    training progress, the end of the search)."""
    if isinstance(event, SearchStarted):
        what = f"{event.total} of {event.size:,}" if event.total != event.size else f"{event.total}"
        noun = "combination" if event.total == event.size == 1 else "combinations"
        better = "higher is better" if event.direction == "max" else "lower is better"
        epochs = "" if event.epochs is None else f"epochs={event.epochs}{' (default)' if event.epochs == 1 else ''}; "
        return (
            f"Searching {what} {noun} ({event.strategy}): {event.description}; {epochs}"
            f"objective {event.objective} ({event.direction}: {better})"
        )
    if isinstance(event, TrialFinished):
        t = event.trial
        head = f"Model {event.position} of {event.total}... trial {t.number} {display_params(t.params)}"
        if t.status is TrialStatus.FAILED:
            body = f"FAILED: {' '.join((t.error or '').split())}"  # one line per trial
        else:
            body = f"score {t.score:.6g} (epoch {t.best_epoch}/{t.epochs})"
            if t.status is TrialStatus.PRUNED:
                body += " pruned"
        if t.fused_with:  # its duration is a share of the group's: the group's own line says how long
            return f"{head} {body} in a group of {len(t.fused_with) + 1}"
        eta = f", ETA {format_duration(event.eta)}" if event.eta is not None and event.position < event.total else ""
        return f"{head} {body} in {format_duration(t.duration)}{eta}"
    if isinstance(event, Note):
        return event.text
    return None


class Printer:
    """Writes each event's line to a stream, flushed, so a log file follows live."""

    wants_batches = False  # per-batch progress would only slow training down

    def __init__(self, stream: TextIO | None = None) -> None:
        from gridspec.display.tally import Tally

        self.stream = stream
        self.tally = Tally()
        self._lock = threading.RLock()  # events come from the executor's threads and Ctrl-C too

    def __call__(self, event: Event) -> None:
        line = format_event(event)
        with self._lock:
            lines = ([] if line is None else [line]) + self.tally.update(event)
            if lines:
                stream = self.stream or sys.stdout
                stream.write("".join(text + "\n" for text in lines))
                stream.flush()

    def close(self) -> None:
        """Nothing to release (the live display's counterpart stops its view)."""

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        self.close()
