"""``SearchResult.effects()``: what each axis did to the score, value by value.

For every axis with more than one value: each value's count of COMPLETE trials, their best
and mean score, and the axis' spread (largest minus smallest mean over the values that have
scores), so a user sees at a glance which axes matter and which barely do, and can shrink
the next grid. An axis that some sub-grids of a list of grids leave out is summarised over
the trials that have it. Failed and pruned trials are left out (a pruned trial's score comes
from fewer epochs). Pure Python over the result's records: no Keras, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from gridspec.result import SearchResult, TrialStatus, better
from gridspec.values import displays, key

__all__ = ["AxisEffect", "Effects", "ValueEffect", "effects"]

VALUES_SHOWN = 12  # rows per axis in the text form: a screenful, whatever the size of the axis


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
    count: int = 0  # COMPLETE trials that have the axis
    absent: int = 0  # COMPLETE trials whose sub-grid leaves the axis out (a list of grids)

    def __getitem__(self, index: int) -> ValueEffect:
        return self.values[index]


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
            absent = f" (over the n={e.count} trials that have it; {e.absent} leave it out)" if e.absent else ""
            lines.append(f"  {e.axis}: spread {spread}{absent}")
            shown = self._screenful(e)
            texts = dict(zip((key(v.value) for v in e.values), displays([v.value for v in e.values])))
            width = max(len(texts[key(v.value)]) for v in shown)
            for v in shown:
                mark = "*" if v.count and key(v.value) == key(e.best_value) else " "
                best = "-" if v.best is None else f"{v.best:.6g}"
                mean = "-" if v.mean is None else f"{v.mean:.6g}"
                lines.append(f"   {mark} {texts[key(v.value)]:<{width}}  best {best:>10}  mean {mean:>10}  n={v.count}")
            if len(shown) < len(e.values):
                lines.append(f"     … {len(e.values) - len(shown):,} more values (SearchResult.effects() has them all)")
        return "\n".join(lines)

    def _screenful(self, effect: AxisEffect) -> list[ValueEffect]:
        """At most ``VALUES_SHOWN`` values of an axis, the best means first when there are more."""
        if len(effect.values) <= VALUES_SHOWN:
            return list(effect.values)
        sign = -1.0 if self.direction == "max" else 1.0
        return sorted(effect.values, key=lambda v: (v.mean is None, sign * (v.mean or 0.0)))[:VALUES_SHOWN]


def _axis_values(result: SearchResult) -> list[tuple[str, list[Any]]]:
    """The axes and the values the trials tried, in the grid's order when the grid is known
    (else in trial order). Values never tried are left out: an axis of 2,000,000 seeds
    searched with max_trials=2 has two values to report, not 2,000,000."""
    context = getattr(result, "context", None)
    grid = getattr(context, "grid", None)
    names = result.axes or tuple(dict.fromkeys(k for t in result.trials for k in t.params))
    out: list[tuple[str, list[Any]]] = []
    for name in names:
        tried: dict[Any, Any] = {}
        for t in result.trials:
            if name in t.params:
                tried.setdefault(key(t.params[name]), t.params[name])
        if grid is not None and name in grid.space.names:
            ordered, wanted = [], set(tried)
            for value in grid.space.axes[grid.space.names.index(name)].values:
                if not wanted:
                    break
                found = key(value)
                if found in wanted:
                    wanted.discard(found)
                    ordered.append(tried[found])
            out.append((name, ordered + [tried[k] for k in wanted]))
        else:
            out.append((name, list(tried.values())))
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
        scored: dict[Any, list[float]] = {}
        for t in completed:
            if name in t.params:
                scored.setdefault(key(t.params[name]), []).append(float(t.score))  # type: ignore[arg-type]
        per_value = []
        for value in values:
            scores = scored.get(key(value), [])
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
        having = sum(1 for t in completed if name in t.params)
        axes.append(AxisEffect(name, tuple(per_value), spread, best_value, having, len(completed) - having))
    return Effects(result.objective, result.direction, tuple(axes))
