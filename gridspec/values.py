"""The one home of how an axis value is shown, identified and stored.

- ``plain(value)``: numpy scalars (and arrays) as Python values at any depth, float32 noise
  removed (``np.float32(0.01)`` -> ``0.01``, the shortest text that reads back as the same
  float32), so ``repr(best_params)`` reads back with ``ast.literal_eval``.
- ``display(value)``: the short form for leaderboards, progress lines and plots
  (``Adam``, ``L2(l2=0.0001)``, ``'relu'``); a long one keeps its two ends around an
  ellipsis, since values on one axis often share a long beginning (a path, a prefix).
- ``displays(values)``: the short forms of one axis' values, never two alike for values
  that differ (a text that would collide is shown whole).
- ``cell(value)``: a CSV cell: strings as they are (``relu``), other values displayed.
- ``identity(value, position)``: the canonical text the fingerprint and duplicate checks use:
  classes and functions by ``module.qualname``; objects with a Keras ``get_config()`` by class
  and config; other objects by ``repr`` when it holds no memory address, else by class and
  position on the axis. Equal identities mean "the same candidate" across processes and runs.

Knows nothing of Keras: a Keras object is recognised by its ``get_config`` method (duck
typing), so ``import gridspec`` stays free of TensorFlow.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["a_kind", "axis_displays", "cell", "display", "display_params", "displays", "has_address", "identity",
           "key", "plain", "shorten"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_DISPLAY_WIDTH = 60


def plain(value: Any) -> Any:
    """``value`` with every numpy scalar or array inside it turned into plain Python values."""
    if type(value).__module__ == "numpy":
        if getattr(value, "ndim", 0):  # an array: element by element, so float32 is cleaned too
            return [plain(v) for v in value]
        if hasattr(value, "item"):
            kind = getattr(getattr(value, "dtype", None), "kind", "")
            if kind == "f" and value.dtype.itemsize < 8:
                return float(str(value))  # numpy's str is the shortest that round-trips
            return value.item()
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def _named(value: Any) -> bool:
    return isinstance(value, type) or inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismethod(value)


def _keras_config(value: Any) -> dict[str, Any] | None:
    """The object's Keras config (regularizers, initializers, layers, optimizers), or None."""
    if _named(value):
        return None
    get_config = getattr(value, "get_config", None)
    if not callable(get_config):
        return None
    try:
        config = get_config()
    except Exception:  # noqa: BLE001 - an object whose config can't be read is shown by repr
        return None
    return dict(config) if isinstance(config, Mapping) else None


def has_address(value: Any) -> bool:
    """Whether ``repr(value)`` holds a memory address (so it changes from run to run)."""
    return bool(_ADDRESS.search(repr(value)))


def _config_text(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={display(v, None)}" for k, v in config.items() if v is not None and k != "name")


def shorten(text: str, width: int | None = _DISPLAY_WIDTH) -> str:
    """``text`` in at most ``width`` characters (None: whole), its two ends kept around ``…``:
    ``'runs/2026/experiment-a.csv'`` and ``'runs/2026/experiment-b.csv'`` stay apart, and a
    string's closing quote or a call's closing parenthesis stays."""
    if width is None or len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail:]


def display(value: Any, width: int | None = _DISPLAY_WIDTH) -> str:
    """The short form of a value: Python-like, objects by class and config, never an address;
    at most ``width`` characters (None: never cut)."""
    value = plain(value)
    if _named(value):
        return shorten(str(getattr(value, "__name__", value)), width)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        inner = ", ".join(display(v, None) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{display(k, None)}: {display(v, None)}" for k, v in value.items()) + "}"
    elif (config := _keras_config(value)) is not None:
        text = f"{type(value).__name__}({_config_text(config)})"
    else:
        text = repr(value)
        if _ADDRESS.search(text):
            text = type(value).__name__
    return shorten(text, width)


def displays(values: Sequence[Any], width: int | None = _DISPLAY_WIDTH) -> list[str]:
    """The short forms of the values of one axis, alike only for the same value: a short form
    two different values share is shown whole, and whole forms that are still alike (two
    objects of one class with an address in their ``repr``) are numbered ``#1``, ``#2``."""
    texts = [display(v, width) for v in values]
    keys = [key(v) for v in values]
    for whole in (True, False):
        owners: dict[str, set[Any]] = {}
        for text, k in zip(texts, keys):
            owners.setdefault(text, set()).add(k)
        clashing = {text for text, ks in owners.items() if len(ks) > 1}
        if not clashing:
            break
        if whole:
            texts = [display(v, None) if t in clashing else t for v, t in zip(values, texts)]
            continue
        numbers: dict[str, dict[Any, int]] = {}
        for i, (text, k) in enumerate(zip(texts, keys)):
            if text in clashing:
                seen = numbers.setdefault(text, {})
                texts[i] = f"{text}#{seen.setdefault(k, len(seen) + 1)}"
    return texts


def axis_displays(combinations: Iterable[Mapping[str, Any]]) -> dict[tuple[str, Any], str]:
    """``displays`` for every axis of some combinations, looked up by ``(axis, key(value))``."""
    values: dict[str, dict[Any, Any]] = {}
    for params in combinations:
        for axis, value in params.items():
            values.setdefault(axis, {}).setdefault(key(value), value)
    shown: dict[tuple[str, Any], str] = {}
    for axis, by_key in values.items():
        for k, text in zip(by_key, displays(list(by_key.values()))):
            shown[(axis, k)] = text
    return shown


def a_kind(value: Any) -> str:
    """``value``'s type with its article, for messages: ``a list``, ``an int``, ``an ndarray``."""
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' or kind.startswith('nd') else 'a'} {kind}"


def display_params(params: Mapping[str, Any]) -> str:
    """A combination as ``{'lr': 0.01, 'reg': L2(l2=0.0001)}``."""
    return "{" + ", ".join(f"{k!r}: {display(v)}" for k, v in params.items()) + "}"


def cell(value: Any) -> Any:
    """A CSV cell: ``relu`` for ``'relu'``, numbers and None as they are, others displayed
    whole (a file is read by programs: nothing is cut)."""
    value = plain(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return display(value, None)


def _json(value: Any) -> Any:
    """A Keras config as JSON data, for ``identity``."""
    value = plain(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return identity(value)


def key(value: Any) -> Any:
    """A hashable key under which two uses of the same candidate in one process compare
    equal: its identity, or the object itself (by ``id``) when its repr holds an address."""
    return ("object", id(value)) if has_address(value) else identity(value)


def identity(value: Any, position: int | None = None) -> str:
    """The canonical text of a candidate value; ``position`` (on its axis) names objects that
    have neither a Keras config nor an address-free ``repr``."""
    value = plain(value)
    if _named(value):
        name = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
        if "<lambda>" in name and position is not None:
            name += f"#{position}"
        return name
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        inner = ", ".join(identity(v, position) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{identity(k, position)}: {identity(v, position)}" for k, v in value.items()) + "}"
    config = _keras_config(value)
    if config is not None:
        kind = type(value)
        config.pop("name", None)  # Keras numbers default names per process (dense_3): not the value
        return f"{kind.__module__}.{kind.__qualname__}({json.dumps(_json(config), sort_keys=True)})"
    text = repr(value)
    if _ADDRESS.search(text):
        kind = type(value)
        where = "?" if position is None else str(position)
        return f"{kind.__module__}.{kind.__qualname__}#{where}"
    return text
