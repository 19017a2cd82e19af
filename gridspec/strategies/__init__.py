"""Search strategies: pure ask/tell state machines over combination indices (no Keras)."""

from __future__ import annotations

from gridspec.strategies.base import Decision, Proposal, Strategy
from gridspec.strategies.exhaustive import GridStrategy, RandomStrategy
from gridspec.strategies.halving import HalvingStrategy

__all__ = ["Decision", "GridStrategy", "HalvingStrategy", "Proposal", "RandomStrategy", "Strategy", "make_strategy", "STRATEGIES"]

STRATEGIES = ("grid", "random", "halving")


def make_strategy(
    name: str, *, size: int, epochs: int, max_trials: int | None, seed: int, **options: object
) -> Strategy:
    """Build the strategy a user named; unknown names were refused before this is called."""
    if name == "grid":
        return GridStrategy(size, epochs, max_trials)
    if name == "random":
        return RandomStrategy(size, epochs, max_trials, seed)
    if name == "halving":
        return HalvingStrategy(size, epochs, max_trials=max_trials, seed=seed, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown strategy {name!r}")  # validated earlier in engine
