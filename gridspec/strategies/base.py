"""The strategy contract: an ask/tell state machine over combination indices and budgets.

A strategy proposes which combination (0-based index into the space) to train next and for
how many epochs, and is told each outcome. It knows nothing of Keras, executors, the
journal or the space's values: only its size. Everything random is seeded explicitly.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

import attrs

__all__ = ["Decision", "Proposal", "Strategy", "StrategyBase"]


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

    Strategies with rungs (halving, asha, hyperband) also say how big a rung is
    (``rung_size``, for "Model i of N" per rung), hand over per-rung progress lines
    (``take_outcomes``), name the combinations that end PRUNED, and say whether proposals may
    continue earlier runs (``continues``: trials then keep checkpoints); ``StrategyBase``
    gives the rung-less answers.
    """

    @property
    def total(self) -> int:
        """How many distinct combinations this run will train (for "Model i of N")."""

    continues: bool  # proposals may continue an earlier run (start_epoch > 0)

    def planned_epochs(self) -> int:
        """The epochs this run trains, summed over its trials, if none fails (for progress)."""

    @property
    def pruned(self) -> frozenset[int]: ...

    def ask(self) -> Proposal | Decision: ...

    def tell(self, proposal: Proposal, score: float | None) -> None: ...

    def rung_size(self, rung: int) -> int | None: ...

    def take_outcomes(self) -> Sequence[object]: ...


class StrategyBase:
    """The answers of a strategy without rungs: nothing pruned, no rung lines."""

    continues = False

    @property
    def pruned(self) -> frozenset[int]:
        return frozenset()

    def rung_size(self, rung: int) -> int | None:
        return None

    def take_outcomes(self) -> Sequence[object]:
        return []
