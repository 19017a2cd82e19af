"""Successive halving: every combination for a few epochs, the best 1/eta promoted to more.

A pure ask/tell state machine over combination indices, epoch budgets and scores. It knows
nothing of Keras, executors or the journal; it only orders scores (``direction``) and
decides who continues. Budgets are *total* epochs: a promoted combination continues from
the epoch its previous rung stopped at (``Proposal.start_epoch``), so the runner resumes
its weights instead of retraining it.

The ladder of budgets ends at ``epochs`` and climbs by ``eta``: with ``epochs=9, eta=3``
it is 1, 3, 9; with ``epochs=100`` it is 1, 4, 11, 33, 100 (``epochs / eta**k``, rounded,
never below ``min_epochs``). Rung *r* trains its combinations to budget *r*; when every one
of them has reported, the best ``len(rung) // eta`` (at least one) are promoted to the
next budget, and ``ask()`` answers ``Decision.WAIT`` until then. A lone survivor goes
straight to the full budget. Failed trials (``score=None``) are never promoted. Ties are
broken by the lower index, so a search is deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import attrs

from gridspec.strategies.base import Decision, Proposal

__all__ = ["HalvingStrategy", "RungOutcome", "check_budget_options", "ladder", "planned_epochs", "ranked"]


def ladder(epochs: int, eta: int, min_epochs: int = 1) -> tuple[int, ...]:
    """The rung budgets (total epochs), strictly increasing, ending at ``epochs``."""
    if min_epochs >= epochs:
        return (epochs,)
    steps = int(math.floor(math.log(epochs / min_epochs, eta) + 1e-9))
    budgets = [max(min_epochs, int(round(epochs / eta**k))) for k in range(steps, 0, -1)]
    budgets.append(epochs)
    return tuple(sorted(set(b for b in budgets if b <= epochs)))


def planned_epochs(count: int, budgets: Sequence[int], eta: int) -> int:
    """The epochs successive halving trains, summed over its trials, when none fails: each
    rung's trials train from the previous budget to theirs, ``n // eta`` (at least one) go
    on, and a lone survivor goes straight to the last budget."""
    total = reached = 0
    for budget in budgets:
        total += count * (budget - reached)
        reached = budget
        if budget >= budgets[-1] or not count:
            break
        count = max(1, count // eta)
        if count == 1:
            return total + budgets[-1] - reached
    return total


def check_budget_options(eta: object, min_epochs: object, direction: object) -> int:
    """Refuse bad ``eta`` / ``min_epochs`` / ``direction`` (the engine checked them for users
    already); returns ``min_epochs`` with its default (1) filled in."""
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise ValueError(f"eta must be an integer of at least 2 (got eta={eta!r})")
    if min_epochs is None:
        min_epochs = 1
    if isinstance(min_epochs, bool) or not isinstance(min_epochs, int) or min_epochs < 1:
        raise ValueError(f"min_epochs must be a positive integer (got min_epochs={min_epochs!r})")
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max' (got {direction!r})")
    return min_epochs


def ranked(scores: Mapping[int, float | None], direction: str) -> list[int]:
    """The indices that have a score, best first; ties go to the lower index."""
    sign = -1.0 if direction == "max" else 1.0
    return [i for _, i in sorted((sign * s, i) for i, s in scores.items() if s is not None)]


@attrs.frozen
class RungOutcome:
    """What one finished rung decided, by 1-based trial number (for the progress lines)."""

    rung: int  # 0-based
    epochs: int
    trained: tuple[int, ...]
    promoted: tuple[int, ...]  # trial numbers, best first
    next_epochs: int | None  # None when this was the last rung
    failed: int

    def __str__(self) -> str:
        head = f"Rung {self.rung + 1} ({self.epochs} epoch{'s' if self.epochs != 1 else ''}): {len(self.trained)} trained"
        if self.failed:
            head += f", {self.failed} failed"
        if self.next_epochs is None:
            best = f"; best trial {self.promoted[0]}" if self.promoted else ""
            return f"{head}; done{best}"
        pruned = len(self.trained) - len(self.promoted) - self.failed
        listed = ", ".join(map(str, self.promoted))
        return (
            f"{head}; promoted {len(self.promoted)} to {self.next_epochs} epochs "
            f"(trials {listed}), pruned {pruned}"
        )


class HalvingStrategy:
    """Successive halving over ``size`` combinations (or a seeded sample of ``max_trials``)."""

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
        indices: Sequence[int] | None = None,
        budgets: Sequence[int] | None = None,
    ) -> None:
        """``indices`` / ``budgets`` replace the grid's combinations and the ladder (one
        Hyperband bracket: its share of the grid, the ladder's top rungs)."""
        min_epochs = check_budget_options(eta, min_epochs, direction)
        self.epochs = epochs
        self.eta = eta
        self.direction = direction
        self.budgets = ladder(epochs, eta, min_epochs) if budgets is None else tuple(budgets)
        if indices is not None:
            first: list[int] = list(indices)
        elif max_trials is None or max_trials >= size:
            first = list(range(size))
        else:  # a uniform sample, run in grid order (as the random strategy does)
            first = sorted(random.Random(seed).sample(range(size), max_trials))
        self._total = len(first)
        self.rung = 0
        self.budget = self.budgets[0]
        self._queue: list[int] = first  # this rung's combinations, in dispatch order
        self._asked: set[int] = set()
        self._scores: dict[int, float | None] = {}  # this rung's outcomes
        self._reached: dict[int, int] = {}  # index -> epochs it has been trained to
        self._pruned: set[int] = set()
        self._outcomes: list[RungOutcome] = []
        self._done = False
        self._sizes: list[int] = [len(first)]  # trials per rung, as rungs start

    # -- the ask/tell contract ----------------------------------------------------------------
    @property
    def total(self) -> int:
        """Distinct combinations this search trains (every one of them runs rung 1)."""
        return self._total

    def planned_epochs(self) -> int:
        """The epochs this search trains, over all its trials, if none fails."""
        return planned_epochs(self._total, self.budgets, self.eta)

    def rung_size(self, rung: int) -> int | None:
        """Trials in ``rung`` (known once it has started): "Model i of N" counts per rung."""
        return self._sizes[rung]

    def ask(self) -> Proposal | Decision:
        if self._done or not self._queue:
            return Decision.STOP
        for index in self._queue:
            if index not in self._asked and index not in self._scores:
                self._asked.add(index)
                return Proposal(index=index, epochs=self.budget,
                                start_epoch=self._reached.get(index, 0), rung=self.rung)
        return Decision.WAIT  # the rung is still running: promotions need all of it

    def tell(self, proposal: Proposal, score: float | None) -> None:
        if self._done or proposal.rung != self.rung or proposal.index not in self._queue:
            raise ValueError(f"{proposal!r} is not part of rung {self.rung + 1}")
        self._scores[proposal.index] = score
        if score is not None:
            self._reached[proposal.index] = proposal.epochs
        if len(self._scores) == len(self._queue):
            self._advance()

    # -- what the engine reads ---------------------------------------------------------------
    @property
    def pruned(self) -> frozenset[int]:
        """Combinations stopped before the full budget because others scored better."""
        return frozenset(self._pruned)

    def take_outcomes(self) -> list[RungOutcome]:
        """The rungs that finished since the last call (for per-rung progress lines)."""
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    # -- internals --------------------------------------------------------------------------
    def _ranked(self) -> list[int]:
        return ranked(self._scores, self.direction)

    def _advance(self) -> None:
        ranked = self._ranked()
        failed = len(self._queue) - len(ranked)
        last = self.budget >= self.epochs
        keep = 0 if last else min(len(ranked), max(1, len(self._queue) // self.eta))
        promoted = ranked[:keep]
        if not last and keep:
            next_budget = self.epochs if keep == 1 else self.budgets[self.rung + 1]
        else:
            next_budget = None
        self._pruned.update(i for i in ranked[keep:] if not last)
        self._outcomes.append(RungOutcome(
            rung=self.rung,
            epochs=self.budget,
            trained=tuple(i + 1 for i in self._queue),
            promoted=tuple(i + 1 for i in (promoted if not last else ranked[:1])),
            next_epochs=next_budget,
            failed=failed,
        ))
        if next_budget is None:
            self._done = True
            return
        self.rung += 1
        self.budget = next_budget
        self._queue = sorted(promoted)
        self._sizes.append(len(self._queue))
        self._asked = set()
        self._scores = {}
