"""``Objective``: the history key a search compares trials on, and which way is better.

The one home of "is this score better than that one" (the leaderboard, halving's rungs,
``save_best``, effects and the best-epoch weights all ask it) and of the default
direction inferred from a Keras metric's name. Plain data: no Keras.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import attrs

from gridspec.errors import GridSpecError

__all__ = ["Objective", "better", "best_of", "infer_direction", "is_maximised"]

Direction = Literal["min", "max"]

_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "score")


def infer_direction(name: str) -> Direction:
    """The default direction for a Keras history key: accuracy-like names are maximised."""
    key = name.lower().removeprefix("val_")
    return "max" if any(word in key for word in _MAX_WORDS) and "loss" not in key else "min"


def is_maximised(objective: str) -> bool:
    return infer_direction(objective) == "max"


def better(a: float, b: float, direction: str) -> bool:
    """Whether score ``a`` beats score ``b`` (strictly)."""
    return a > b if direction == "max" else a < b


def best_of(values: Sequence[float], direction: str) -> tuple[float, int] | None:
    """The best finite value of a curve and its 1-based position, or None if none is finite.
    Strictly better wins, so the earliest best epoch is the one reported."""
    best: tuple[float, int] | None = None
    for i, v in enumerate(values, start=1):
        if v is None or not math.isfinite(v):
            continue
        if best is None or better(v, best[0], direction):
            best = (v, i)
    return best


@attrs.frozen
class Objective:
    """A history key and its direction (``"min"`` or ``"max"``)."""

    name: str
    direction: Direction

    @classmethod
    def resolve(cls, name: str | None, direction: str | None, has_val: bool) -> Objective:
        """The search's objective: ``val_loss`` with validation data, else ``loss``; the
        direction inferred from the name unless given."""
        if name is None:
            name = "val_loss" if has_val else "loss"
        if name.startswith("val_") and not has_val:
            raise GridSpecError(
                f"objective {name!r} needs validation data, and there is no @val_data factory; "
                f"add one, pass val=<factory>, or use objective={name.removeprefix('val_')!r}"
            )
        chosen = infer_direction(name) if direction is None else direction
        if chosen not in ("min", "max"):
            raise GridSpecError(f"direction must be 'min' or 'max' (got direction={direction!r})")
        return cls(name, chosen)  # type: ignore[arg-type]

    def better(self, a: float, b: float) -> bool:
        return better(a, b, self.direction)

    def best_of(self, values: Sequence[float]) -> tuple[float, int] | None:
        return best_of(values, self.direction)

    def sort_key(self, score: float) -> float:
        """Ascending order of this key is best first."""
        return -score if self.direction == "max" else score
