"""Executors: where trials run. Each follows ``concurrent.futures``: ``submit(task) -> Future``.

A task is data (a ``TrialTask``), never a closure. The in-process executor is the reference
the others must match. Executors know nothing of the grid, the strategy or the journal.
"""

from __future__ import annotations

from gridspec.executors.base import Executor
from gridspec.executors.inprocess import InProcessExecutor

__all__ = ["EXECUTORS", "Executor", "InProcessExecutor"]

EXECUTORS = ("inprocess",)
