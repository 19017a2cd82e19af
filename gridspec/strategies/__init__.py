"""Search strategies: pure ask/tell state machines over combination indices (no Keras)."""

from __future__ import annotations

from gridspec.strategies.base import Decision, Proposal, Strategy
from gridspec.strategies.exhaustive import GridStrategy, RandomStrategy

__all__ = ["Decision", "GridStrategy", "Proposal", "RandomStrategy", "Strategy", "make_strategy", "STRATEGIES"]

STRATEGIES = ("grid", "random")


def make_strategy(
    name: str, *, size: int, epochs: int, max_trials: int | None, seed: int, **options: object
) -> Strategy:
    """Build the strategy a user named; unknown names were refused before this is called."""
    if name == "grid":
        return GridStrategy(size, epochs, max_trials)
    if name == "random":
        return RandomStrategy(size, epochs, max_trials, seed)
    raise ValueError(f"unknown strategy {name!r}")  # validated earlier in engine
