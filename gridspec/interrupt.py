"""Ctrl-C during a search: the first one asks the loop to stop after the trial in progress is
recorded; a second one stops at once (Python's ordinary ``KeyboardInterrupt``).

Owns only the SIGINT handler's installation and removal. It works in the main thread;
elsewhere (a search started from another thread) Ctrl-C keeps Python's default behaviour.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopRequest"]


class StopRequest:
    """A context manager; ``requested`` turns true at the first Ctrl-C inside it."""

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self.requested = False
        self._on_first = on_first
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        # The next Ctrl-C gets the handler from before: normally an immediate KeyboardInterrupt.
        signal.signal(signal.SIGINT, self._previous)
        if self._on_first is not None:
            try:
                self._on_first()
            except Exception:  # noqa: BLE001 - a failing progress printer must not kill the search
                pass

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is signal.default_int_handler or callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed and not self.requested:
            signal.signal(signal.SIGINT, self._previous)
        self._installed = False
