"""Search strategies: pure ask/tell state machines over combination indices (no Keras)."""

from __future__ import annotations

from gridspec.strategies.asha import AshaStrategy
from gridspec.strategies.base import Decision, Proposal, Strategy, StrategyBase
from gridspec.strategies.exhaustive import GridStrategy, RandomStrategy
from gridspec.strategies.halving import HalvingStrategy
from gridspec.strategies.hyperband import HyperbandStrategy

__all__ = [
    "AshaStrategy", "Decision", "GridStrategy", "HalvingStrategy", "HyperbandStrategy", "Proposal",
    "RandomStrategy", "Strategy", "StrategyBase", "make_strategy", "nothing_to_cut", "CONTINUING", "STRATEGIES",
]

STRATEGIES = ("grid", "random", "halving", "asha", "hyperband")

_BUDGETED = {"halving": HalvingStrategy, "asha": AshaStrategy, "hyperband": HyperbandStrategy}
CONTINUING = frozenset(_BUDGETED)  # continue promoted trials (``continues``); take eta, min_epochs


def make_strategy(
    name: str, *, size: int, epochs: int, max_trials: int | None, seed: int,
    eta: int = 3, min_epochs: int | None = None, direction: str = "min",
) -> Strategy:
    """Build the strategy a user named; unknown names were refused before this is called.

    ``eta``, ``min_epochs`` and ``direction`` go to the strategies that spend budgets
    (halving, asha, hyperband); grid and random have no use for them.
    """
    if name == "grid":
        return GridStrategy(size, epochs, max_trials)
    if name == "random":
        return RandomStrategy(size, epochs, max_trials, seed)
    if name in _BUDGETED:
        return _BUDGETED[name](size, epochs, max_trials=max_trials, seed=seed, eta=eta,
                               min_epochs=min_epochs, direction=direction)
    raise ValueError(f"unknown strategy {name!r}")  # validated earlier in engine


def nothing_to_cut(name: str, strategy: Strategy) -> str | None:
    """A note when a strategy that spends budgets has a single rung (``epochs`` not above
    ``min_epochs``, as with the default ``epochs=1``): it then trains every combination fully,
    exactly as the grid would, and says so once instead of looking like it halved anything."""
    budgets = getattr(strategy, "budgets", None)
    if name not in _BUDGETED or budgets is None or len(budgets) > 1:
        return None
    epochs = budgets[-1]
    return (
        f"note: {name} has nothing to cut: with epochs={epochs} its ladder of budgets is a single "
        f"rung of {epochs} epoch{'' if epochs == 1 else 's'}, so every combination trains fully, as "
        f"with the grid; train for more epochs than min_epochs (such as epochs=9, --epochs 9) "
        f"to let it stop the weak combinations early"
    )
