"""``SearchResult.effects()``: what each axis did to the score, value by value.

For every axis with more than one value: each value's count of COMPLETE trials, their best
and mean score, and the axis' spread (largest minus smallest mean over the values that have
scores), so a user sees at a glance which axes matter and which barely do, and can shrink
the next grid. Failed and pruned trials are left out (a pruned trial's score comes from fewer
epochs). Pure Python over the result's records: no Keras, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from gridspec.result import SearchResult, TrialStatus, better

__all__ = ["AxisEffect", "Effects", "ValueEffect", "effects"]


@attrs.frozen
class ValueEffect:
    """The COMPLETE trials that used one value of an axis."""

    value: Any
    count: int
    best: float | None  # None when no trial with this value completed
    mean: float | None


@attrs.frozen
class AxisEffect:
    """One axis: its values' scores and how far apart their means are."""

    axis: str
    values: tuple[ValueEffect, ...]
    spread: float | None  # max mean - min mean; None with fewer than two scored values
    best_value: Any = None  # the value with the best mean score

    def __getitem__(self, index: int) -> ValueEffect:
        return self.values[index]


def _short(value: Any) -> str:
    if isinstance(value, type) or (callable(value) and hasattr(value, "__name__")):
        return str(value.__name__)
    return repr(value)


@attrs.frozen
class Effects:
    """Every multi-valued axis' effect, in the grid's axis order; empty if nothing completed."""

    objective: str
    direction: str
    axes: tuple[AxisEffect, ...] = ()

    def __iter__(self) -> Iterator[AxisEffect]:
        return iter(self.axes)

    def __len__(self) -> int:
        return len(self.axes)

    def __getitem__(self, key: str | int) -> AxisEffect:
        if isinstance(key, int):
            return self.axes[key]
        for effect in self.axes:
            if effect.axis == key:
                return effect
        names = ", ".join(e.axis for e in self.axes) or "none"
        raise KeyError(f"no effect for axis {key!r} (axes with several values: {names})")

    def ranked(self) -> list[AxisEffect]:
        """The axes by spread, largest first (axes without a spread last)."""
        return sorted(self.axes, key=lambda e: (e.spread is None, -(e.spread or 0.0)))

    def to_records(self) -> list[dict[str, Any]]:
        """One row per (axis, value): ``axis``, ``value``, ``count``, ``best``, ``mean``, ``spread``."""
        return [
            {"axis": e.axis, "value": v.value, "count": v.count, "best": v.best, "mean": v.mean,
             "spread": e.spread}
            for e in self.axes
            for v in e.values
        ]

    def __str__(self) -> str:
        if not self.axes:
            return "Effects: none (no completed trial, or no axis with several values)"
        lines = [
            f"Effects on {self.objective} ({self.direction}), axes by spread of mean scores, "
            f"largest first; * marks the best mean:"
        ]
        for e in self.ranked():
            spread = "-" if e.spread is None else f"{e.spread:.4g}"
            lines.append(f"  {e.axis}: spread {spread}")
            width = max(len(_short(v.value)) for v in e.values)
            for v in e.values:
                mark = "*" if v.count and repr(v.value) == repr(e.best_value) else " "
                best = "-" if v.best is None else f"{v.best:.6g}"
                mean = "-" if v.mean is None else f"{v.mean:.6g}"
                lines.append(f"   {mark} {_short(v.value):<{width}}  best {best:>10}  mean {mean:>10}  n={v.count}")
        return "\n".join(lines)


def _axis_values(result: SearchResult) -> list[tuple[str, Sequence[Any]]]:
    """The axes and their candidate values: the grid's when known, else those the trials used."""
    context = getattr(result, "context", None)
    grid = getattr(context, "grid", None)
    if grid is not None:
        return [(axis.name, axis.values) for axis in grid.space.axes]
    names = result.axes or tuple(dict.fromkeys(k for t in result.trials for k in t.params))
    out: list[tuple[str, Sequence[Any]]] = []
    for name in names:
        seen: dict[str, Any] = {}
        for t in result.trials:
            if name in t.params:
                seen.setdefault(repr(t.params[name]), t.params[name])
        out.append((name, list(seen.values())))
    return out


def _best(scores: Sequence[float], direction: str) -> float | None:
    best: float | None = None
    for score in scores:
        if best is None or better(score, best, direction):
            best = score
    return best


def effects(result: SearchResult) -> Effects:
    """Each multi-valued axis' per-value count, best and mean over the COMPLETE trials."""
    completed = [t for t in result.trials if t.status is TrialStatus.COMPLETE and t.score is not None]
    if not completed:
        return Effects(result.objective, result.direction)
    axes = []
    for name, values in _axis_values(result):
        if len(values) < 2:
            continue
        per_value = []
        for value in values:
            key = repr(value)
            scores = [float(t.score) for t in completed if name in t.params and repr(t.params[name]) == key]  # type: ignore[arg-type]
            best = _best(scores, result.direction)
            mean = sum(scores) / len(scores) if scores else None
            per_value.append(ValueEffect(value, len(scores), best, mean))
        means = {i: v.mean for i, v in enumerate(per_value) if v.mean is not None}
        spread = max(means.values()) - min(means.values()) if len(means) > 1 else None
        top = None
        for i, mean in means.items():
            if top is None or better(mean, means[top], result.direction):
                top = i
        best_value = per_value[top].value if top is not None else None
        axes.append(AxisEffect(name, tuple(per_value), spread, best_value))
    return Effects(result.objective, result.direction, tuple(axes))
