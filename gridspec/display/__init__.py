"""The displays of a search's progress: plain lines and the live terminal view.

They belong with the command line (``gridspec run``) and ``search(verbose=1)``; the engine
imports this package only when progress is asked for, never at module level. Events are
the plain data of ``gridspec.progress``.

- ``Printer`` (``lines``): one line per finished trial and note, for pipes, log files and CI;
  no colours, no carriage returns.
- ``LiveDisplay`` (``live``): the same lines, and above them a refreshing panel with the
  overall progress, each running trial's epoch, batch and latest loss, the best so far, the
  rung of a halving search and the failures; drawn with ``rich`` (a Keras dependency).
- ``watch`` (``watch``): ``gridspec show PATH --watch``, a journal followed as it grows.
- ``Tally`` (``tally``): what both displays count from the events (epochs summed over
  trials, groups of trials trained together, rungs, the best so far).

``make_display`` picks the live view only where it can be seen: a terminal or a notebook.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from gridspec.display.lines import Printer, format_duration, format_event

__all__ = ["Printer", "format_duration", "format_event", "live_possible", "make_display", "reporter"]


def live_possible(stream: TextIO) -> bool:
    """Whether ``stream`` is somewhere a live view can be seen: a terminal (that is not
    ``TERM=dumb``), or a notebook's output with ``ipywidgets``. Decided by the stream itself,
    not by ``FORCE_COLOR`` and the like: a pipe always gets the plain lines."""
    from rich.console import Console

    if Console(file=stream).is_jupyter:  # rich draws a live view in a notebook with ipywidgets
        import importlib.util

        return stream is sys.stdout and importlib.util.find_spec("ipywidgets") is not None
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False
    return tty and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


def make_display(stream: TextIO | None = None, live: bool | None = None) -> Any:
    """The display for ``stream`` (standard output by default): the live view in a terminal
    or a notebook (``live=None``), plain lines otherwise; ``live=False`` forces the lines."""
    stream = stream or sys.stdout
    if live is False or (live is None and not live_possible(stream)):
        return Printer(stream)
    from gridspec.display.live import LiveDisplay

    return LiveDisplay(stream)


def reporter(verbose: int | bool | Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """``verbose`` as given to ``search()``: 0 silent, 1 progress (live in a terminal or a
    notebook, else lines), or a callable that gets every event."""
    if callable(verbose):
        return verbose
    return make_display() if verbose else None
