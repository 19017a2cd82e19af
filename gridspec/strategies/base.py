"""The strategy contract: an ask/tell state machine over combination indices and budgets.

A strategy proposes which combination (0-based index into the space) to train next and for
how many epochs, and is told each outcome. It knows nothing of Keras, executors, the
journal or the space's values: only its size. Everything random is seeded explicitly.
"""

from __future__ import annotations

import enum
from typing import Protocol

import attrs

__all__ = ["Decision", "Proposal", "Strategy"]


class Decision(enum.Enum):
    """What ``ask()`` answers when it has no proposal."""

    WAIT = "wait"  # outcomes still pending decide what comes next (e.g. a halving rung)
    STOP = "stop"  # nothing left to run


@attrs.frozen
class Proposal:
    """Train combination ``index`` up to ``epochs`` total epochs.

    ``start_epoch`` > 0 asks to continue the combination's previous run (its weights and
    optimizer state) instead of training from scratch; ``rung`` groups the stages of
    halving, asha and hyperband (numbered across hyperband's brackets).
    """

    index: int
    epochs: int
    start_epoch: int = 0
    rung: int = 0

    @property
    def number(self) -> int:
        """The user-facing 1-based trial number."""
        return self.index + 1


class Strategy(Protocol):
    """Proposes work and learns from outcomes; ``score=None`` means the trial failed.

    Optional, read by the engine when present (halving, asha and hyperband have them):
    ``rung_size(rung)`` for "Model i of N" per rung, ``take_outcomes()`` for per-rung
    progress lines, ``pruned`` (the indices whose trials end as PRUNED), and ``continues``
    (True when proposals may have ``start_epoch`` > 0, so trials keep checkpoints).
    """

    @property
    def total(self) -> int:
        """How many distinct combinations this run will train (for "Model i of N")."""

    def ask(self) -> Proposal | Decision: ...

    def tell(self, proposal: Proposal, score: float | None) -> None: ...
