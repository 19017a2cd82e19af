"""Ctrl-C during a search: the first one asks the search to stop; a second one stops at once
(Python's ordinary ``KeyboardInterrupt``).

After the first, the engine's loop hands out no more work. A trial training alone finishes and
is recorded. A group of trials training together (fused) would make the user wait for every
member's last epoch, so the loop that trains it calls ``check_stop()`` at each epoch end: the
group stops there, raising ``StopAtEpochEnd``, and its members are not recorded (a resumed
search trains them again). ``check_stop`` needs no Keras and no argument, so every trainer's
group loop (whatever its backend) calls it the same way, in one line.

Owns the SIGINT handler's installation and removal, the stop request of the search running in
this process, and (for the CLI) ``TermAsInterrupt``, which makes SIGTERM do what Ctrl-C does:
containers and schedulers stop a job with SIGTERM. Both work in the main thread; elsewhere the
signals keep Python's default behaviour. Worker processes and Ray tasks never see the request:
their groups finish and are recorded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopAtEpochEnd", "StopRequest", "TermAsInterrupt", "check_stop", "stop_requested"]

_active: StopRequest | None = None  # the request of the search running in this process


class StopAtEpochEnd(KeyboardInterrupt):
    """A group of trials stopped at an epoch end because the search was asked to stop.

    A ``KeyboardInterrupt``, so it passes every handler that lets Ctrl-C through and ends the
    search as a second Ctrl-C would: the group's members are not recorded.
    """


def stop_requested() -> bool:
    """Whether the search running in this process was asked to stop (a first Ctrl-C or SIGTERM)."""
    return _active is not None and _active.requested


def check_stop() -> None:
    """Raise ``StopAtEpochEnd`` if the search running in this process was asked to stop.

    A loop that trains several trials together calls it at each epoch end (and before the
    first), so one Ctrl-C does not wait for the whole group to finish.
    """
    if stop_requested():
        raise StopAtEpochEnd("the search was asked to stop")


class StopRequest:
    """A context manager; ``requested`` turns true at the first Ctrl-C inside it.

    Inside a ``TermAsInterrupt`` (the CLI), the first SIGTERM asks the same, even when
    SIGINT is ignored (a job started with ``&`` from a script ignores Ctrl-C).
    """

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self.requested = False
        self._on_first = on_first
        self._previous: dict[int, Any] = {}  # signal -> the handler from before
        self._outer: StopRequest | None = None  # the request active before this one

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        term = getattr(self._previous.get(signal.SIGTERM), "__self__", None)
        if signum == signal.SIGTERM and isinstance(term, TermAsInterrupt):
            term.received = True
        # The next signal gets the handler from before: normally an immediate KeyboardInterrupt.
        self._restore()
        if self._on_first is not None:
            try:
                self._on_first()
            except Exception:  # noqa: BLE001 - a failing progress printer must not kill the search
                pass

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def __enter__(self) -> StopRequest:
        global _active
        self._outer = _active
        _active = self
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is signal.default_int_handler or callable(previous):
                self._previous[signal.SIGINT] = previous
                signal.signal(signal.SIGINT, self._handle)
            term = signal.getsignal(signal.SIGTERM)
            if isinstance(getattr(term, "__self__", None), TermAsInterrupt):  # the CLI opted in
                self._previous[signal.SIGTERM] = term
                signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        global _active
        self._restore()
        _active = self._outer


class TermAsInterrupt:
    """A context manager under which SIGTERM does what Ctrl-C does: inside a search
    (``StopRequest``) the first asks it to stop and the second stops at once; elsewhere it raises ``KeyboardInterrupt``. ``received`` says
    whether a SIGTERM came (the CLI then exits 143, not 130)."""

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        raise KeyboardInterrupt  # outside a search, or a second SIGTERM: stop at once

    def __enter__(self) -> TermAsInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
        self._installed = False
