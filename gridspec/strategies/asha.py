"""Asynchronous successive halving (ASHA, Li et al., MLSys 2020): promote without waiting.

The same ladder of budgets as ``halving`` (``eta``, ``min_epochs``; budgets are *total*
epochs and a promoted combination continues from where it stopped), but no rung waits for
its slowest trial. Whenever a worker is free, ``ask()`` promotes a combination that is in
the top ``1/eta`` of those finished in its rung so far and not yet promoted (highest rung
first); failing that it starts a new combination at the bottom rung. It answers
``Decision.WAIT`` only when neither exists and trials are still running (their outcomes
may make a promotion), and ``Decision.STOP`` when nothing is running either.

On a finite grid the ends of the rungs matter: a rung is *full* once nothing more can enter
it and nothing in it is running. A full rung of fewer than ``eta`` trials would promote no
one, so its best goes straight to the full budget (as halving's lone survivor does).
Combinations still below ``epochs`` in a full, decided rung are pruned.

New combinations start in an order shuffled with ``seed``: early promotions judge from the
trials finished so far, and grid order would put similar combinations first. With one
worker the search is deterministic; with several, which combinations are promoted depends
on which trials finish first. Failed trials (``score=None``) count in their rung's size but
are never promoted; ties are broken by the lower index. Pure Python: no Keras, no executor,
no journal.
"""

from __future__ import annotations

import random

from gridspec.strategies.base import Decision, Proposal
from gridspec.strategies.halving import RungOutcome, check_budget_options, ladder, planned_epochs, ranked

__all__ = ["AshaStrategy"]


class _Rung:
    """One rung's members: who entered, who is running, who finished, who left upwards."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.members: list[int] = []  # in the order they entered
        self.running: set[int] = set()
        self.scores: dict[int, float | None] = {}
        self.promoted: list[int] = []
        self.full = False  # nothing more can enter and nothing is running
        self.decided = False  # full, and every promotion out of it handed out


class AshaStrategy:
    """ASHA over ``size`` combinations (or a seeded sample of ``max_trials``)."""

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
        self.direction = direction
        self.budgets = ladder(epochs, eta, min_epochs)
        count = size if max_trials is None else min(size, max_trials)
        rng = random.Random(seed)
        # A lazy sample, then a seeded order: the grid may be far larger than count.
        self._order = rng.sample(range(size), count)
        self._next = 0
        self._rungs = [_Rung(b) for b in self.budgets]
        self._reached: dict[int, int] = {}  # index -> epochs trained to
        self._pruned: set[int] = set()
        self._outcomes: list[RungOutcome] = []
        self._settle()

    # -- the ask/tell contract ----------------------------------------------------------------
    @property
    def total(self) -> int:
        """Distinct combinations this search trains (every one of them runs the first rung)."""
        return len(self._order)

    def ask(self) -> Proposal | Decision:
        for r in range(len(self._rungs) - 2, -1, -1):  # the highest rung first
            index = self._candidate(r)
            if index is not None:
                return self._promote(r, index)
        if self._next < len(self._order):
            index = self._order[self._next]
            self._next += 1
            return self._enter(0, index)
        self._settle()  # the last start may have left the bottom rung with nothing running
        if any(rung.running for rung in self._rungs):
            return Decision.WAIT
        return Decision.STOP

    def tell(self, proposal: Proposal, score: float | None) -> None:
        if not 0 <= proposal.rung < len(self._rungs) or proposal.index not in self._rungs[proposal.rung].running:
            raise ValueError(f"{proposal!r} is not running in rung {proposal.rung + 1}")
        rung = self._rungs[proposal.rung]
        rung.running.discard(proposal.index)
        rung.scores[proposal.index] = score
        if score is not None:
            self._reached[proposal.index] = proposal.epochs
        self._settle()

    # -- what the engine reads ---------------------------------------------------------------
    def planned_epochs(self) -> int:
        """The epochs this search trains, over all its trials, if none fails and every rung
        promotes its best 1/eta (as halving does; ASHA's own promotions may differ a little)."""
        return planned_epochs(len(self._order), self.budgets, self.eta)

    def rung_size(self, rung: int) -> int:
        """Trials rung ``rung`` will hold: exact once the rung below is decided, else what
        its promotions will add up to if nothing fails ("Model i of N" per rung)."""
        if rung == 0:
            return len(self._order)
        here = self._rungs[rung]
        if self._rungs[rung - 1].decided:
            return len(here.members)
        return max(len(here.members), max(1, self.rung_size(rung - 1) // self.eta))

    @property
    def pruned(self) -> frozenset[int]:
        """Combinations left below ``epochs`` in a decided rung because others scored better."""
        return frozenset(self._pruned)

    def take_outcomes(self) -> list[RungOutcome]:
        """The rungs decided since the last call (for per-rung progress lines)."""
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    # -- internals --------------------------------------------------------------------------
    def _enter(self, r: int, index: int) -> Proposal:
        rung = self._rungs[r]
        rung.members.append(index)
        rung.running.add(index)
        return Proposal(index=index, epochs=rung.budget, start_epoch=self._reached.get(index, 0), rung=r)

    def _promote(self, r: int, index: int) -> Proposal:
        self._rungs[r].promoted.append(index)
        if self._rungs[r].full and len(self._rungs[r].scores) < self.eta:
            # A full rung too small to promote anyone sends its best alone to the end: the
            # rung above holds only it, so its intermediate budgets would decide nothing.
            self._rungs[r + 1].budget = self.epochs
            del self._rungs[r + 2:]
        proposal = self._enter(r + 1, index)
        self._settle()
        return proposal

    def _candidate(self, r: int) -> int | None:
        """The best combination of rung ``r`` due a promotion, if any."""
        rung = self._rungs[r]
        if rung.budget >= self.epochs:
            return None
        best = ranked(rung.scores, self.direction)
        quota = len(rung.scores) // self.eta
        if rung.full and quota == 0 and best:
            quota = 1  # too few to promote by the rule; the best still goes on
        for index in best[:quota]:
            if index not in rung.promoted:
                return index
        return None

    def _settle(self) -> None:
        """Mark the rungs that became full or decided, bottom up, and record their outcomes."""
        for r, rung in enumerate(self._rungs):
            if not rung.full:
                below_done = self._next == len(self._order) if r == 0 else self._rungs[r - 1].decided
                rung.full = below_done and not rung.running
            if rung.full and not rung.decided and self._candidate(r) is None:
                rung.decided = True
                self._decide(r)
            if not rung.decided:
                return

    def _decide(self, r: int) -> None:
        rung = self._rungs[r]
        if not rung.members:
            return
        best = ranked(rung.scores, self.direction)
        last = rung.budget >= self.epochs
        if not last:
            self._pruned.update(i for i in best if i not in rung.promoted)
        promoted = [i for i in best if i in rung.promoted] if not last else best[:1]
        self._outcomes.append(RungOutcome(
            rung=r,
            epochs=rung.budget,
            trained=tuple(i + 1 for i in rung.members),
            promoted=tuple(i + 1 for i in promoted),
            next_epochs=self._rungs[r + 1].budget if not last and promoted else None,
            failed=len(rung.scores) - len(best),
        ))
