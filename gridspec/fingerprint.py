"""The fingerprint of a search: what a stored trial's result depends on, hashed.

Owns the canonical description of a search (the axes and their values in order — for a
list of grids each sub-grid's too, and a ``where=`` predicate's source —, the model
function's and data factories' source, and the settings that change a trial's score:
epochs, steps, objective, direction, seed, repeats, callbacks) and the human explanation of
how two descriptions differ. The journal stores both, so a changed search is never silently
given stale results. Knows nothing of Keras, SQLite or the search loop.

Not covered, by design: other functions that the model function or the factories call, and files
they read. Changing those needs ``resume=False`` (``--fresh``); docs/journal.md says so.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from gridspec.values import display, identity, plain

__all__ = ["Fingerprint", "describe_changes", "jsonable", "search_fingerprint", "token"]

_LISTED = 100  # axes longer than this are stored as a count and a hash, not value by value


def token(value: Any) -> str:
    """A stable text form of an axis value (``gridspec.values.identity``)."""
    return identity(value)


def _axis_part(name: str, values: Sequence[Any]) -> list[Any]:
    """An axis as the fingerprint stores it: its values' identities, or for a long axis their
    count and hash (a 2,000,000-value axis must not put 2,000,000 strings in the journal)."""
    identities = [identity(v, position) for position, v in enumerate(values)]
    if len(identities) <= _LISTED:
        return [name, identities]
    digest = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:16]
    return [name, {"count": len(identities), "first": identities[:3], "sha256": digest}]


def _axis_text(values: Any) -> str:
    if isinstance(values, Mapping):
        return f"{values.get('count', '?'):,} values starting {', '.join(values.get('first', []))}, …"
    return ", ".join(values)


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: numpy scalars as Python values, primitives kept,
    non-finite floats as text, classes and functions by ``module.qualname``, other objects by
    their text, whole (``display``: what ``show`` prints, ``L2(l2=0.0001)``). Never
    pickle: reading a journal must run no code."""
    value = plain(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # 'nan', 'inf': float() reads them back
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, type) or inspect.isfunction(value) or inspect.isbuiltin(value):
        return identity(value)  # module.qualname
    return display(value, None)


def _source(fn: Callable[..., Any]) -> str:
    """The function's own source text; bytecode and constants if the source is unavailable."""
    inner = getattr(fn, "fn", fn)  # a GridFunction wraps the user's function
    try:
        return textwrap.dedent(inspect.getsource(inner))
    except (OSError, TypeError):
        code = getattr(inner, "__code__", None)
        if code is None:
            return token(inner)
        return f"<no source> {code.co_code.hex()} {token(code.co_consts)}"


def _function(fn: Callable[..., Any] | None) -> dict[str, str] | None:
    if fn is None:
        return None
    inner = getattr(fn, "fn", fn)
    name = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', token(inner))}"
    return {"name": name, "source": _source(fn)}


@attrs.frozen
class Fingerprint:
    """``digest`` identifies the search; ``parts`` (JSON data) explains it."""

    digest: str
    parts: dict[str, Any] = attrs.field(eq=False)

    @classmethod
    def from_parts(cls, parts: Mapping[str, Any]) -> Fingerprint:
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return cls(hashlib.sha256(canonical.encode()).hexdigest()[:16], dict(parts))


def search_fingerprint(
    axes: Sequence[tuple[str, Sequence[Any]]],
    model: Callable[..., Any],
    train: Callable[..., Any] | None,
    val: Callable[..., Any] | None,
    settings: Mapping[str, Any],
    *,
    grids: Sequence[Sequence[tuple[str, Sequence[Any]]]] = (),
    where: Callable[..., Any] | None = None,
) -> Fingerprint:
    """The fingerprint of a search over ``axes`` (name, values) with these functions.

    A list of sub-grids (``grids``, each its axes) and a ``where=`` predicate (by its
    source, like the model function) are parts only when present, so the fingerprint of one
    product is what it always was and its journals still resume.
    """
    parts: dict[str, Any] = {
        "axes": [_axis_part(name, values) for name, values in axes],
        "model": _function(model),
        "train": _function(train),
        "val": _function(val),
        "settings": {k: jsonable(v) for k, v in settings.items()},
    }
    if len(grids) > 1:
        parts["grids"] = [[_axis_part(name, values) for name, values in grid] for grid in grids]
    if where is not None:
        parts["where"] = _function(where)
    return Fingerprint.from_parts(parts)


def _first_difference(old: str, new: str) -> str:
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line[:1] in "+-" and not line.startswith(("+++", "---")):
            return f"; first difference: {line.strip()[:80]!r}"
    return ""


def _describe_function(role: str, old: Mapping[str, str] | None, new: Mapping[str, str] | None) -> list[str]:
    if old == new:
        return []
    if old is None or new is None:
        was = old["name"] if old else "none"
        now = new["name"] if new else "none"
        return [f"the {role} changed from {was} to {now}"]
    if old["name"] != new["name"]:
        return [f"the {role} changed from {old['name']} to {new['name']}"]
    return [f"the source of the {role} {new['name']}() changed{_first_difference(old['source'], new['source'])}"]


def _describe_axes(old_axes: list[Any], new_axes: list[Any], owner: str = "the grid") -> list[str]:
    """``owner`` is ``the grid`` or ``sub-grid 2``."""
    if [a[0] for a in old_axes] != [a[0] for a in new_axes]:
        return [f"{owner}'s axes changed from ({', '.join(a[0] for a in old_axes)}) "
                f"to ({', '.join(a[0] for a in new_axes)})"]
    label = "grid axis" if owner == "the grid" else f"{owner}'s axis"
    return [f"{label} {name!r} changed from [{_axis_text(was)}] to [{_axis_text(now)}]"
            for (name, was), (_, now) in zip(old_axes, new_axes) if was != now]


def _grids_text(grids: Sequence[Any] | None, axes: Sequence[Any]) -> str:
    if not grids:
        return f"one product ({', '.join(a[0] for a in axes)})"
    return f"{len(grids)} sub-grids ({' | '.join(', '.join(a[0] for a in g) for g in grids)})"


def _describe_grids(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The axes of one product, or of each sub-grid of a list of grids."""
    old_grids, new_grids = old.get("grids"), new.get("grids")
    old_axes, new_axes = list(old.get("axes", [])), list(new.get("axes", []))
    if not old_grids and not new_grids:
        return _describe_axes(old_axes, new_axes)
    if not old_grids or not new_grids or len(old_grids) != len(new_grids):
        return [f"the grid changed from {_grids_text(old_grids, old_axes)} to {_grids_text(new_grids, new_axes)}"]
    changes: list[str] = []
    for number, (was, now) in enumerate(zip(old_grids, new_grids), start=1):
        changes += _describe_axes(list(was), list(now), f"sub-grid {number}")
    return changes


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints' parts, one phrase per change."""
    changes = _describe_grids(old, new)
    changes += _describe_function("where= predicate", old.get("where"), new.get("where"))
    changes += _describe_function("model function", old.get("model"), new.get("model"))
    changes += _describe_function("training data factory", old.get("train"), new.get("train"))
    changes += _describe_function("validation data factory", old.get("val"), new.get("val"))
    old_settings, new_settings = old.get("settings", {}), new.get("settings", {})
    for key in dict.fromkeys([*old_settings, *new_settings]):
        if old_settings.get(key) != new_settings.get(key):
            changes.append(f"{key} changed from {old_settings.get(key)!r} to {new_settings.get(key)!r}")
    return changes or ["the search's fingerprint changed (another gridspec version wrote it)"]
