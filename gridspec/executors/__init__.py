"""Executors: where trials run. Each follows ``concurrent.futures``: ``submit(task) -> Future``.

A task is data (a ``TrialTask``), never a closure. The in-process executor is the reference
the others must match. Executors know nothing of the grid, the strategy or the journal.
``make_executor`` is the one place the engine's settings pick an executor.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gridspec.errors import GridSpecError
from gridspec.executors.base import Executor
from gridspec.executors.inprocess import InProcessExecutor

__all__ = ["Executor", "InProcessExecutor", "check_not_in_worker", "make_executor"]


def check_not_in_worker() -> None:
    """A module that starts a search when imported would recurse in every worker."""
    if os.environ.get("GRIDSPEC_WORKER"):
        raise GridSpecError(
            "search() with worker processes was called inside a gridspec worker: importing "
            "the module that defines the grid starts a search; put the search under "
            "if __name__ == '__main__':"
        )


def make_executor(settings: Any, runner: Any, runspec: Any,
                  progress: Callable[[Any], None] | None = None) -> Executor:
    """The executor for a search: in-process for one worker, else spawned worker processes,
    or Ray. ``gpus=[...]`` means worker processes, one per GPU unless ``workers`` asks for
    more (then they share the GPUs round-robin). ``runspec`` is the picklable ``RunSpec``
    (None when trials run in this process); ``progress`` hears the epochs of trials that run
    in worker processes."""
    s = settings
    if s.executor == "ray":
        from gridspec.executors.ray import RayExecutor

        return RayExecutor(runspec, address=s.address, resources=s.trial_resources,
                           group_size=runner.group_size)
    if s.executor is None and s.workers == 1 and not s.gpus:
        return InProcessExecutor(runner)
    from gridspec.executors.process import ProcessExecutor

    gpus = list(s.gpus) if s.gpus else None
    count = max(s.workers, len(gpus)) if gpus and s.workers == 1 else s.workers
    return ProcessExecutor(runspec, workers=count, gpus=gpus, progress=progress)
