"""The search space: named axes of candidate values, and index <-> combination.

Owns combination order (``itertools.product`` over the axes in declaration order, the last
axis varying fastest) and the mapping between a 0-based index and its combination. The
space is never materialised, so a grid of 10**8 combinations costs nothing until trials run.
Knows nothing of Keras, strategies or trials.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from gridspec.errors import GridError
from gridspec.values import a_kind, display, key, plain

__all__ = ["MAX_UNCAPPED", "Axis", "Space", "plain"]  # plain: re-exported from gridspec.values

MAX_UNCAPPED = 1_000_000  # combinations a search may have without max_trials


def _describe(value: Any) -> str:
    return a_kind(value)


def _candidates(name: str, values: Any) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or isinstance(values, Mapping) or not isinstance(
        values, Iterable
    ):
        raise GridError(
            f"grid axis {name!r} must be a list of candidate values, such as "
            f"{name}=[{values!r}] (got {name}={values!r}, {_describe(values)})"
        )
    if isinstance(values, Iterator):
        raise GridError(
            f"grid axis {name!r} must be a finite list of candidate values, not an "
            f"iterator that can be read only once (got {_describe(values)}); "
            f"write {name}=list(...)"
        )
    if isinstance(values, (set, frozenset)):
        small = len(values) <= 6
        shown = repr(values) if small else f"a {type(values).__name__} of {len(values)} values"
        raise GridError(
            f"grid axis {name!r} must be an ordered list of candidate values, not a "
            f"{type(values).__name__} (got {name}={shown}): a set's order changes from one process "
            f"to the next, and with it the trial numbers; write {name}=sorted({shown if small else '...'}) or a list"
        )
    items = tuple(plain(v) for v in values)
    if not items:
        raise GridError(
            f"grid axis {name!r} is empty; give it at least one candidate value, "
            f"such as {name}=[...]"
        )
    if not isinstance(values, range):  # a range has no duplicates; skip the check on huge ones
        _refuse_duplicates(name, items)
    return items


def _refuse_duplicates(name: str, items: tuple[Any, ...]) -> None:
    """Each candidate once: a repeated value would train twice and count twice in effects."""
    seen: dict[Any, int] = {}
    for position, value in enumerate(items):
        found = key(value)
        if found in seen:
            raise GridError(
                f"grid axis {name!r} lists the value {display(value)} twice (positions "
                f"{seen[found] + 1} and {position + 1}); give each candidate once, such as "
                f"{name}=list(dict.fromkeys(values)) (use repeats=N to train a combination several times)"
            )
        seen[found] = position


@attrs.frozen
class Axis:
    """One named hyperparameter and its candidate values, in the order written."""

    name: str
    values: tuple[Any, ...]

    @classmethod
    def from_user(cls, name: str, values: Any) -> Axis:
        """Validate what the user wrote in ``@grid(name=values)``."""
        return cls(name, _candidates(name, values))

    def __len__(self) -> int:
        return len(self.values)


@attrs.frozen
class Space:
    """The cartesian product of the axes, indexed lazily."""

    axes: tuple[Axis, ...]

    @classmethod
    def from_dict(cls, axes: Mapping[str, Any]) -> Space:
        if not axes:
            raise GridError(
                "@grid() needs at least one axis, such as @grid(lr=[0.001, 0.0005])"
            )
        return cls(tuple(Axis.from_user(name, values) for name, values in axes.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(axis.name for axis in self.axes)

    @property
    def size(self) -> int:
        """Number of combinations (may exceed ``sys.maxsize``, unlike ``len``)."""
        return math.prod(len(axis) for axis in self.axes)

    # One product is the simplest grid: the same questions a union of grids answers
    # (``gridspec.union``), so callers need not tell the two apart.
    @property
    def parts(self) -> tuple[Space, ...]:
        return (self,)

    @property
    def where(self) -> None:
        return None

    @property
    def product_size(self) -> int:
        """Combinations before any ``where=``: what the 1,000,000 cap is measured on."""
        return self.size

    def shape(self) -> str:
        """``lr (2) x act (3) = 6``: the axes and their product, without the word."""
        return f"{' x '.join(f'{axis.name} ({len(axis)})' for axis in self.axes)} = {self.size:,}"

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        size = self.size
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"space indices must be integers (got {index!r})")
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"combination index {index} out of range for a space of {size}")
        combination: dict[str, Any] = {}
        for axis in reversed(self.axes):
            index, position = divmod(index, len(axis))
            combination[axis.name] = axis.values[position]
        return {name: combination[name] for name in self.names}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(self.size):
            yield self[index]

    def index(self, params: Mapping[str, Any]) -> int:
        """The 0-based index of a combination (inverse of ``space[i]``)."""
        index = 0
        for axis in self.axes:
            try:
                position = axis.values.index(params[axis.name])
            except (KeyError, ValueError):
                raise KeyError(f"{params!r} is not a combination of this space") from None
            index = index * len(axis) + position
        return index

    def describe(self, count: bool = True) -> str:
        """``lr (2) x act_in (3) = 6 combinations``: the shape of the grid in one line
        (``count`` is for a ``where=`` grid's sake: a product needs no counting)."""
        return f"{self.shape()} combination{'' if self.size == 1 else 's'}"
