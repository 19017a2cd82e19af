"""``FrozenDict``: a read-only ``dict`` for the params and histories of frozen records.

A ``dict`` subclass, so ``json.dumps``, pandas and ``isinstance(x, dict)`` keep working, that
refuses every mutation, hashes by content, and pickles to a plain constructor call (so a
``Trial`` crosses process boundaries and Ray's object store unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

__all__ = ["FrozenDict", "freeze_history", "freeze_params"]

K = TypeVar("K")
V = TypeVar("V")


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple((k, _hashable(v)) for k, v in value.items())
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class FrozenDict(dict[K, V]):
    """A ``dict`` that can't be changed after it is made."""

    __slots__ = ()

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise TypeError(
            "this mapping belongs to a frozen gridspec record and can't be changed; "
            "copy it first: dict(trial.params)"
        )

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple((k, _hashable(v)) for k, v in self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)

    def __copy__(self) -> FrozenDict[K, V]:
        return self

    def __deepcopy__(self, memo: Any) -> FrozenDict[K, V]:
        import copy

        return type(self)({copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()})


def freeze_params(mapping: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    """Params as a read-only mapping (the same object if it already is one)."""
    if isinstance(mapping, FrozenDict):
        return mapping
    return FrozenDict(mapping or {})


def freeze_history(history: Mapping[str, Iterable[Any]] | None) -> FrozenDict[str, tuple[float, ...]]:
    """A history as ``{key: (float, ...)}``: read-only, hashable, still JSON-ready."""
    if isinstance(history, FrozenDict):
        return history
    return FrozenDict({str(k): tuple(float(v) for v in vs) for k, vs in (history or {}).items()})
