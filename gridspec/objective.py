"""``Objective``: the history key a search compares trials on, and which way is better.

The one home of "is this score better than that one" (the leaderboard, halving's rungs,
``save_best``, effects and the best-epoch weights all ask it) and of the default direction
inferred from a Keras metric's name: ``infer_direction("val_binary_io_u") == "max"``. The
vocabulary covers Keras 3's metric names (``keras.metrics.*``'s default ``name``, the string
shortcuts such as ``"acc"`` and ``"mae"``, the ``val_`` prefix and the ``_1`` suffix Keras
adds to a repeated name); user-named metrics are read by the same words (``val_my_auc`` is
maximised). Plain data: the names are text, so no Keras is imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import attrs

from gridspec.errors import GridSpecError, Named

__all__ = ["DIRECTIONS", "Direction", "Objective", "best_first", "best_of", "better", "infer_direction",
           "which_is_better"]

Direction = Literal["min", "max"]
DIRECTIONS: tuple[Direction, ...] = ("min", "max")

# Lower is better, whatever else the name says: losses, errors, counts of mistakes.
_LOWER = re.compile(
    r"loss|error|crossentropy|hinge|divergence|poisson|logcosh|false_(?:positive|negative)"
    r"|(?:^|_)(?:mse|mae|mape|msle|rmse|kld|kl)(?:_|$)"
)
# Higher is better: Keras 3's accuracy-, AUC-, precision/recall-, F-score-, IoU-like metrics,
# similarities, correlations, R², sensitivity/specificity (also ``*_at_*``), true counts.
_HIGHER = re.compile(
    r"accuracy|precision|recall|sensitivity|specificity|similarity|correlation|fbeta"
    r"|true_(?:positive|negative)|io_u|iou"
    r"|(?:^|_)(?:acc|auc|f1|r2|score)(?:_|$)"
)


def infer_direction(name: str) -> Direction:
    """``"max"`` for a higher-is-better Keras metric name, else ``"min"`` (losses, errors,
    and names the vocabulary doesn't know)."""
    key = name.lower()
    key = key[4:] if key.startswith("val_") else key
    if _LOWER.search(key):
        return "min"
    return "max" if _HIGHER.search(key) else "min"


def better(a: float, b: float, direction: str) -> bool:
    """Whether score ``a`` beats score ``b`` (strictly)."""
    return a > b if direction == "max" else a < b


def best_first(direction: str) -> float:
    """The sign that sorts scores best first: sort ascending on ``best_first(d) * score``."""
    return -1.0 if direction == "max" else 1.0


def which_is_better(direction: str) -> str:
    """``"lower is better"`` or ``"higher is better"``, as the displays say it."""
    return "higher is better" if direction == "max" else "lower is better"


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
                f"add one, pass ", Named("val", "<factory>", placeholder=True), ", or use ",
                Named("objective", name.removeprefix("val_")), setting="objective",
            )
        chosen = infer_direction(name) if direction is None else direction
        if chosen not in DIRECTIONS:
            raise GridSpecError("direction must be 'min' or 'max' (got ", Named("direction", direction), ")",
                                setting="direction")
        return cls(name, chosen)  # type: ignore[arg-type]

    def better(self, a: float, b: float) -> bool:
        return better(a, b, self.direction)

    def best_of(self, values: Sequence[float]) -> tuple[float, int] | None:
        return best_of(values, self.direction)
