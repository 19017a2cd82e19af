"""The executor contract shared by every way of running trials."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from gridspec.records import TrialTask
from gridspec.result import Trial

__all__ = ["Executor"]


class Executor:
    """Runs ``TrialTask``s (``concurrent.futures`` style): a future's result is a ``Trial``,
    its exception a user mistake. ``submit_many`` hands over a group of tasks that may train
    together (a fused group is one unit of work); by default they run one by one."""

    capacity: int = 1  # groups that may be in flight at once
    # Where progress events from trials running elsewhere go (worker processes forward a
    # running trial's epochs), given when the executor is made; in-process trials report to
    # the runner's ``progress`` directly.
    progress: Callable[[Any], None] | None = None

    def submit(self, task: TrialTask) -> Future[Trial]:
        return self.submit_many([task])[0]

    def submit_many(self, tasks: Sequence[TrialTask]) -> list[Future[Trial]]:
        return [self.submit(task) for task in tasks]

    def wait_ready(self) -> None:
        """Block until trials can run where this executor runs them, raising the user's
        mistake a worker met as it started (importing the module, reading the probed data).
        Trials in this process: nothing to wait for (the engine probed the data itself)."""

    def shutdown(self, cancel: bool = False) -> None:
        """Release workers: after their current work, or at once with ``cancel=True``."""


def settle(futures: Sequence[Future[Trial]], outcomes: Sequence[object]) -> None:
    """Resolve each future with its outcome: a ``Trial``, or the exception that stopped it."""
    for future, outcome in zip(futures, outcomes):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
