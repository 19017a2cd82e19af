"""The executor contract shared by every way of running trials."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol

from gridspec.result import Trial
from gridspec.trial import TrialTask

__all__ = ["Executor"]


class Executor(Protocol):
    """Runs ``TrialTask``s; a future's result is a ``Trial``, its exception a user mistake."""

    @property
    def capacity(self) -> int:
        """How many tasks may be in flight at once."""

    def submit(self, task: TrialTask) -> Future[Trial]: ...

    def shutdown(self, cancel: bool = False) -> None: ...
