"""The grid and random strategies: every combination in order, or a seeded sample of them."""

from __future__ import annotations

import random
from collections.abc import Iterable

from gridspec.strategies.base import Decision, Proposal, StrategyBase

__all__ = ["GridStrategy", "RandomStrategy"]


class _Ordered(StrategyBase):
    """Hands out a fixed list of indices in order, each once, at full budget."""

    def __init__(self, indices: Iterable[int], epochs: int) -> None:
        self._indices = list(indices)
        self._epochs = epochs
        self._next = 0
        self.done: set[int] = set()

    @property
    def total(self) -> int:
        return len(self._indices)

    def planned_epochs(self) -> int:
        """The epochs this search trains, over all its trials."""
        return len(self._indices) * self._epochs

    def ask(self) -> Proposal | Decision:
        while self._next < len(self._indices):
            index = self._indices[self._next]
            self._next += 1
            if index not in self.done:
                return Proposal(index=index, epochs=self._epochs)
        return Decision.STOP

    def tell(self, proposal: Proposal, score: float | None) -> None:
        self.done.add(proposal.index)


class GridStrategy(_Ordered):
    """All combinations in grid order (the first ``max_trials`` of them if capped)."""

    def __init__(self, size: int, epochs: int, max_trials: int | None = None) -> None:
        count = size if max_trials is None else min(size, max_trials)
        super().__init__(range(count), epochs)


class RandomStrategy(_Ordered):
    """``max_trials`` distinct combinations drawn with ``seed``, run in grid order.

    Running them sorted keeps the trial list and the progress lines in one order; the draw
    itself is uniform without replacement (``random.sample`` over a lazy ``range``, so even
    a 10**12 grid costs nothing to sample from).
    """

    def __init__(self, size: int, epochs: int, max_trials: int | None, seed: int) -> None:
        count = size if max_trials is None else min(size, max_trials)
        drawn = random.Random(seed).sample(range(size), count)
        super().__init__(sorted(drawn), epochs)
