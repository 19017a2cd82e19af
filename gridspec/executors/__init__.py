"""Executors: where trials run. Each follows ``concurrent.futures``: ``submit(task) -> Future``.

A task is data (a ``TrialTask``), never a closure. The in-process executor is the reference
the others must match. Executors know nothing of the grid, the strategy or the journal.
``make_executor`` is the one place the engine's settings pick an executor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gridspec.errors import GridSpecError
from gridspec.executors.base import Executor
from gridspec.executors.inprocess import InProcessExecutor

__all__ = ["EXECUTORS", "Executor", "InProcessExecutor", "check_executor", "make_executor"]

EXECUTORS = ("process", "ray")  # names users may pass as executor=; None picks by workers


def check_executor(executor: Any, workers: int, gpus: Sequence[int] | None) -> None:
    """Validate ``executor=`` / ``gpus=`` before anything is imported or trained."""
    if executor is not None and executor not in EXECUTORS:
        valid = ", ".join(["None (in-process for workers=1, else 'process')", *map(repr, EXECUTORS)])
        raise GridSpecError(f"unknown executor {executor!r}; valid executors: {valid}")
    if gpus is not None:
        if isinstance(gpus, (str, bytes)) or not all(
            isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus
        ) or not list(gpus):
            raise GridSpecError(
                f"gpus must be a non-empty list of GPU indices, such as gpus=[0, 1] "
                f"(got gpus={gpus!r})"
            )
        if len(set(gpus)) != len(list(gpus)):
            raise GridSpecError(f"gpus lists a GPU twice (got gpus={list(gpus)!r})")


def make_executor(
    executor: str | None, workers: int, gpus: Sequence[int] | None, runner: Any,
    runspec: Callable[[], Any],
) -> Any:
    """The executor for a search: in-process for one worker, else spawned worker processes.

    ``gpus=[...]`` means worker processes, one per GPU unless ``workers`` asks for more
    (then they share the GPUs round-robin). ``runspec()`` builds the picklable ``RunSpec``
    only when processes need it.
    """
    if executor is None and workers == 1 and not gpus:
        return InProcessExecutor(runner)
    import os

    if os.environ.get("GRIDSPEC_WORKER"):
        raise GridSpecError(
            "search() with worker processes was called inside a gridspec worker: importing "
            "the module that defines the grid starts a search; put the search under "
            "if __name__ == '__main__':"
        )
    from gridspec.executors.process import ProcessExecutor

    count = max(workers, len(gpus)) if gpus and workers == 1 else workers
    return ProcessExecutor(runspec(), workers=count, gpus=gpus)
