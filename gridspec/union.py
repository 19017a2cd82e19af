"""A grid that is not one product: a list of sub-grids and a ``where=`` predicate.

A list of sub-grids (scikit-learn's ``param_grid`` form) is indexed as offsets over its
parts: index ``i`` falls in the part whose range holds it, and that part's own mixed-radix
division does the rest, so a union of huge products costs nothing until trials run.
``where=`` keeps the combinations it accepts; which ones is found by one pass over the
product, once, when first needed (``len``, ``space[i]``), and kept as one bit per
combination with a count per block of bits, so the i-th kept combination and a
combination's position are found without a list of them all (a 10**8 product costs
12.5 MB). Knows nothing of Keras, strategies or trials.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from gridspec.errors import GridError
from gridspec.space import MAX_UNCAPPED, Axis, Space
from gridspec.values import display_params, key

__all__ = ["Predicate", "UnionSpace", "part_label"]

Predicate = Callable[[dict[str, Any]], Any]

_BLOCK = 512  # bytes of the bitmap per counted block: 4,096 combinations


def part_label(number: int, part: Space) -> str:
    """How messages name a sub-grid: ``sub-grid 2 (opt, lr, momentum)``."""
    return f"sub-grid {number} ({', '.join(part.names)})"


def _combinations(part: Space) -> Iterator[dict[str, Any]]:
    """A part's combinations in order (``itertools.product``: cheaper than ``part[i]``)."""
    names = part.names
    for values in itertools.product(*(axis.values for axis in part.axes)):
        yield dict(zip(names, values))


def _merged(name: str, parts: Sequence[Space]) -> Axis:
    """One axis over every part that has it: each value once, in order of appearance."""
    found = [part.axes[part.names.index(name)] for part in parts if name in part.names]
    if len(found) == 1:
        return found[0]  # one part's axis is already checked for repeats
    values: dict[Any, Any] = {}
    for axis in found:
        for value in axis.values:
            values.setdefault(key(value), value)
    return Axis(name, tuple(values.values()))


class _Kept:
    """The product indices a predicate kept: a bit each, and the count kept before each block."""

    def __init__(self, bits: bytearray) -> None:
        self.bits = bits
        self.before: list[int] = []
        total = 0
        for start in range(0, len(bits), _BLOCK):
            self.before.append(total)
            total += int.from_bytes(bits[start:start + _BLOCK], "little").bit_count()
        self.count = total

    def has(self, index: int) -> bool:
        return bool(self.bits[index >> 3] >> (index & 7) & 1)

    def rank(self, index: int) -> int:
        """How many kept indices come before ``index``."""
        block = (index >> 3) // _BLOCK
        below = int.from_bytes(self.bits[block * _BLOCK:index >> 3], "little").bit_count()
        return self.before[block] + below + (self.bits[index >> 3] & ((1 << (index & 7)) - 1)).bit_count()

    def select(self, rank: int) -> int:
        """The kept index with ``rank`` kept indices before it."""
        block = bisect.bisect_right(self.before, rank) - 1
        left = rank - self.before[block]
        for offset, byte in enumerate(self.bits[block * _BLOCK:(block + 1) * _BLOCK]):
            ones = byte.bit_count()
            if left < ones:
                for bit in range(8):
                    if byte >> bit & 1:
                        if not left:
                            return (block * _BLOCK + offset) * 8 + bit
                        left -= 1
            left -= ones
        raise IndexError(rank)  # unreachable for 0 <= rank < count


class UnionSpace:
    """Sub-grids in order, each a product, and the combinations ``where`` accepts.

    The same questions as one ``Space`` (``len``, ``space[i]``, ``index``, ``describe``,
    ``names``, ``axes`` — an axis merged over the parts that have it), plus ``parts``,
    ``where`` and ``product_size`` (the combinations before ``where``).
    """

    def __init__(self, parts: Sequence[Space], where: Predicate | None = None) -> None:
        self.parts = tuple(parts)
        self.where = where
        self.starts = list(itertools.accumulate((part.size for part in self.parts), initial=0))
        self.product_size = self.starts[-1]
        self.names = tuple(dict.fromkeys(name for part in self.parts for name in part.names))
        self._kept: _Kept | None = None
        self._repeats: list[list[tuple[int, dict[str, set[Any]]]]] | None = None
        if where is None:
            self._refuse_repeats()

    @functools.cached_property
    def axes(self) -> tuple[Axis, ...]:
        """Each axis merged over the parts that have it (TensorBoard's domains, effects' order)."""
        return tuple(_merged(name, self.parts) for name in self.names)

    # -- combinations produced twice ----------------------------------------------------------
    def _overlaps(self) -> list[list[tuple[int, dict[str, set[Any]]]]]:
        """For each part, the earlier parts that could produce one of its combinations: the
        same axes, and every axis sharing a value (with each such axis' values, by key)."""
        if self._repeats is None:
            self._repeats = [[] for _ in self.parts]
            for j, later in enumerate(self.parts):
                for i, earlier in enumerate(self.parts[:j]):
                    if set(earlier.names) != set(later.names):
                        continue
                    values = {axis.name: {key(v) for v in axis.values} for axis in earlier.axes}
                    if all(any(key(v) in values[axis.name] for v in axis.values) for axis in later.axes):
                        self._repeats[j].append((i, values))
        return self._repeats

    def _repeat_error(self, params: Mapping[str, Any], earlier: int, later: int) -> GridError:
        return GridError(
            f"@grid([...]): the combination {display_params(params)} is in "
            f"{part_label(earlier + 1, self.parts[earlier])} and {part_label(later + 1, self.parts[later])}, "
            f"so it would train twice under two trial numbers; remove it from one of them"
        )

    def _refuse_repeats(self) -> None:
        """Without ``where``, overlapping values mean a repeated combination: name the first."""
        for j, overlaps in enumerate(self._overlaps()):
            for i, values in overlaps[:1]:
                params = {axis.name: next(v for v in axis.values if key(v) in values[axis.name])
                          for axis in self.parts[j].axes}
                raise self._repeat_error(params, i, j)

    # -- where= ---------------------------------------------------------------------------------
    def _accepts(self, params: dict[str, Any], number: int) -> bool:
        assert self.where is not None
        try:
            return bool(self.where(dict(params)))
        except Exception as exc:
            where = f" of {part_label(number, self.parts[number - 1])}" if len(self.parts) > 1 else ""
            hint = (f"; in a list of grids a combination holds only its sub-grid's axes: "
                    f"use p.get({str(exc.args[0])!r}) for an axis some sub-grids leave out"
                    if isinstance(exc, KeyError) and exc.args and len(self.parts) > 1 else "")
            raise GridError(
                f"where= raised {type(exc).__name__}: {exc} for the combination "
                f"{display_params(params)}{where}{hint}"
            ) from exc

    def _counted(self) -> _Kept:
        """One pass over the product, once: which combinations ``where`` keeps."""
        if self._kept is None:
            bits = bytearray((self.product_size + 7) // 8)
            overlaps = self._overlaps()
            for number, (part, start) in enumerate(zip(self.parts, self.starts), start=1):
                for offset, params in enumerate(_combinations(part), start=start):
                    if not self._accepts(params, number):
                        continue
                    for i, values in overlaps[number - 1]:
                        if all(key(v) in values[name] for name, v in params.items()):
                            raise self._repeat_error(params, i, number - 1)
                    bits[offset >> 3] |= 1 << (offset & 7)
            kept = _Kept(bits)
            if not kept.count:
                raise GridError(
                    f"where= keeps none of the {self.product_size:,} combinations "
                    f"({' | '.join(p.shape() for p in self.parts)}); it keeps a combination when it "
                    f"returns True for its dict of axis values"
                )
            self._kept = kept
        return self._kept

    @property
    def counted(self) -> bool:
        """Whether the size is known without a pass over the product."""
        return self.where is None or self._kept is not None

    # -- the space's questions ---------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.product_size if self.where is None else self._counted().count

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"space indices must be integers (got {index!r})")
        size = self.size
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"combination index {index} out of range for a space of {size}")
        if self.where is not None:
            index = self._counted().select(index)
        part = bisect.bisect_right(self.starts, index) - 1
        return self.parts[part][index - self.starts[part]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """In order, lazily: kept combinations are read off the bits once counted, else the
        predicate is asked as they come (so the first few cost no pass)."""
        for number, (part, start) in enumerate(zip(self.parts, self.starts), start=1):
            for offset, params in enumerate(_combinations(part), start=start):
                if self.where is None or (self._kept.has(offset) if self._kept is not None
                                          else self._accepts(params, number)):
                    yield params

    def index(self, params: Mapping[str, Any]) -> int:
        """The 0-based index of a combination: its sub-grid is the one with exactly its axes."""
        for part, start in zip(self.parts, self.starts):
            if set(params) != set(part.names):
                continue
            try:
                position = start + part.index(params)
            except KeyError:
                continue
            if self.where is None:
                return position
            kept = self._counted()
            if kept.has(position):
                return kept.rank(position)
        raise KeyError(f"{params!r} is not a combination of this space")

    def describe(self, count: bool = True) -> str:
        """``opt (1) x lr (2) = 2 | opt (1) x lr (1) x momentum (2) = 2; 4 combinations``.

        With ``where=`` the kept count needs a pass over the product: made here when the
        product is within the 1,000,000 cap (or already made), else left for the search.
        """
        shapes = " | ".join(part.shape() for part in self.parts)
        total = self.product_size
        if self.where is None:
            return f"{shapes}; {total:,} combination{'' if total == 1 else 's'}"
        if self._kept is None and (not count or total > MAX_UNCAPPED):
            return f"{shapes}; {total:,} combination{'' if total == 1 else 's'} before where="
        return f"{shapes}; where= keeps {self._counted().count:,} of {total:,} combinations"

    def __repr__(self) -> str:
        return f"<UnionSpace {self.describe(count=False)}>"
