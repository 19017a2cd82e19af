"""The in-process executor: runs each trial synchronously, in ``submit``.

The reference behaviour: notebooks and tests use it (``workers=1``), and every other
executor must produce the same trials for the same seed.
"""

from __future__ import annotations

from concurrent.futures import Future

from gridspec.result import Trial
from gridspec.trial import TrialRunner, TrialTask

__all__ = ["InProcessExecutor"]


class InProcessExecutor:
    """One trial at a time, in this process; the returned future is already done."""

    capacity = 1

    def __init__(self, runner: TrialRunner) -> None:
        self.runner = runner

    def submit(self, task: TrialTask) -> Future[Trial]:
        future: Future[Trial] = Future()
        try:
            future.set_result(self.runner.run(task))
        except Exception as exc:  # user mistakes travel in the future; Ctrl-C does not
            future.set_exception(exc)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Nothing to release: trials ran in the caller's thread."""
