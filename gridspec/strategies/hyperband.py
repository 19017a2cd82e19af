"""Hyperband (Li et al., JMLR 2018): successive halving in brackets of different first budgets.

Successive halving needs a first budget (``min_epochs``): too small and a slow starter is
pruned before it shows its worth, too large and the savings go. Hyperband hedges: bracket
*s* starts its combinations at the ladder's budget *s* rungs below ``epochs`` and halves
from there, so the most aggressive bracket starts at the ladder's bottom (``min_epochs``
bounds it) and the last trains every one of its combinations fully. The ladder is halving's
(``ladder(epochs, eta, min_epochs)``).

The paper draws ``n_s = ceil((s_max + 1) / (s + 1) * eta**s)`` new configurations per
bracket. On a finite grid the combinations (or a seeded sample of ``max_trials``) are
shuffled with ``seed`` and dealt to the brackets in proportion to ``n_s`` (largest
remainders, aggressive brackets first on ties), so each combination is at most one trial;
a bracket with no share is left out. Each bracket runs in grid order as a ``HalvingStrategy``.

Brackets run side by side: ``ask()`` hands out the first bracket's work and, while that
bracket waits for a rung to end, the next bracket's, so workers stay busy. With one worker
the brackets run one after another, most aggressive first. Rungs are numbered across
brackets (``Proposal.rung``) so the engine's per-rung counts stay apart. Pure Python.
"""

from __future__ import annotations

import math
import random

import attrs

from gridspec.strategies.base import Decision, Proposal
from gridspec.strategies.halving import HalvingStrategy, RungOutcome, check_budget_options, ladder

__all__ = ["BracketOutcome", "HyperbandStrategy", "deal"]


def deal(count: int, weights: list[int]) -> list[int]:
    """Split ``count`` items in proportion to ``weights``: largest remainders, first on ties."""
    total = sum(weights)
    exact = [count * w / total for w in weights]
    shares = [int(math.floor(x)) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda b: (-(exact[b] - shares[b]), b))
    for b in by_remainder[: count - sum(shares)]:
        shares[b] += 1
    return shares


@attrs.frozen
class BracketOutcome:
    """A decided rung of one bracket (for the progress lines)."""

    bracket: int  # 1-based
    brackets: int
    outcome: RungOutcome

    def __str__(self) -> str:
        return f"Bracket {self.bracket} of {self.brackets}: {self.outcome}"


class HyperbandStrategy:
    """Hyperband over ``size`` combinations (or a seeded sample of ``max_trials``)."""

    continues = True  # promoted trials continue from checkpoints (the engine keeps a folder)

    def __init__(
        self,
        size: int,
        epochs: int,
        *,
        direction: str = "min",
        eta: int = 3,
        min_epochs: int | None = None,
        max_trials: int | None = None,
        seed: int = 0,
    ) -> None:
        min_epochs = check_budget_options(eta, min_epochs, direction)
        self.epochs = epochs
        self.eta = eta
        self.budgets = ladder(epochs, eta, min_epochs)
        s_max = len(self.budgets) - 1
        count = size if max_trials is None else min(size, max_trials)
        rng = random.Random(seed)
        dealt = rng.sample(range(size), count)  # a lazy sample, in a seeded order
        nominal = [math.ceil((s_max + 1) / (s + 1) * eta**s) for s in range(s_max, -1, -1)]
        self.brackets: list[HalvingStrategy] = []
        self._offsets: list[int] = []  # the first global rung number of each bracket
        self._bracket_of: dict[int, int] = {}
        start = rung = 0
        for s, share in zip(range(s_max, -1, -1), deal(count, nominal)):
            if not share:
                continue
            indices = sorted(dealt[start:start + share])
            start += share
            for index in indices:
                self._bracket_of[index] = len(self.brackets)
            budgets = self.budgets[s_max - s:]
            self.brackets.append(HalvingStrategy(
                size, epochs, direction=direction, eta=eta, indices=indices, budgets=budgets))
            self._offsets.append(rung)
            rung += len(budgets)

    # -- the ask/tell contract ----------------------------------------------------------------
    @property
    def total(self) -> int:
        return len(self._bracket_of)

    def ask(self) -> Proposal | Decision:
        waiting = False
        for b, bracket in enumerate(self.brackets):
            decision = bracket.ask()
            if isinstance(decision, Proposal):
                return attrs.evolve(decision, rung=decision.rung + self._offsets[b])
            waiting = waiting or decision is Decision.WAIT
        return Decision.WAIT if waiting else Decision.STOP

    def tell(self, proposal: Proposal, score: float | None) -> None:
        b = self._bracket_of.get(proposal.index)
        if b is None:
            raise ValueError(f"{proposal!r} is in no bracket")
        self.brackets[b].tell(attrs.evolve(proposal, rung=proposal.rung - self._offsets[b]), score)

    # -- what the engine reads ---------------------------------------------------------------
    def bracket_of(self, rung: int) -> int:
        """The 0-based bracket a global rung number belongs to."""
        return max(b for b, offset in enumerate(self._offsets) if offset <= rung)

    def planned_epochs(self) -> int:
        """The epochs this search trains, over all its brackets' trials, if none fails."""
        return sum(bracket.planned_epochs() for bracket in self.brackets)

    def rung_size(self, rung: int) -> int | None:
        b = self.bracket_of(rung)
        return self.brackets[b].rung_size(rung - self._offsets[b])

    @property
    def pruned(self) -> frozenset[int]:
        return frozenset().union(*(bracket.pruned for bracket in self.brackets))

    def take_outcomes(self) -> list[BracketOutcome]:
        return [BracketOutcome(b + 1, len(self.brackets), outcome)
                for b, bracket in enumerate(self.brackets) for outcome in bracket.take_outcomes()]
