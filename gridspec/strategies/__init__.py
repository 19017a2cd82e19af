"""Search strategies: pure ask/tell state machines over combination indices (no Keras)."""

from __future__ import annotations

from gridspec.settings import CONTINUING, STRATEGY_NAMES
from gridspec.strategies.asha import AshaStrategy
from gridspec.strategies.base import Decision, Proposal, Strategy, StrategyBase
from gridspec.strategies.exhaustive import GridStrategy, RandomStrategy
from gridspec.strategies.halving import HalvingStrategy
from gridspec.strategies.hyperband import HyperbandStrategy

__all__ = [
    "AshaStrategy", "Decision", "GridStrategy", "HalvingStrategy", "HyperbandStrategy", "Proposal",
    "RandomStrategy", "Strategy", "StrategyBase", "make_strategy",
]

# The names are the settings' (``STRATEGY_NAMES``; ``CONTINUING``: those that spend budgets,
# take eta and min_epochs, and continue promoted trials from checkpoints).
_BUDGETED = {"halving": HalvingStrategy, "asha": AshaStrategy, "hyperband": HyperbandStrategy}
assert set(_BUDGETED) == set(CONTINUING) and set(CONTINUING) < set(STRATEGY_NAMES)


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
