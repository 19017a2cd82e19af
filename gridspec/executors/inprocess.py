"""The in-process executor: runs each group of trials synchronously, in ``submit_many``.

The reference behaviour: notebooks and tests use it (``workers=1``), and every other
executor must produce the same trials for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from gridspec.executors.base import Executor, settle
from gridspec.records import TrialTask
from gridspec.result import Trial
from gridspec.trial import TrialRunner

__all__ = ["InProcessExecutor"]


class InProcessExecutor(Executor):
    """One group at a time, in this process; the returned futures are already done."""

    capacity = 1

    def __init__(self, runner: TrialRunner) -> None:
        self.runner = runner

    def submit_many(self, tasks: Sequence[TrialTask]) -> list[Future[Trial]]:
        futures: list[Future[Trial]] = [Future() for _ in tasks]
        try:
            outcomes: list[object] = list(self.runner.run_many(tasks))
        except Exception as exc:  # user mistakes travel in the futures; Ctrl-C does not
            outcomes = [exc] * len(tasks)
        settle(futures, outcomes)
        return futures
