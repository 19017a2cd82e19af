"""Discovery: a module, or a ``module:function`` target, scanned into a frozen ``Registry``.

Scanning returns a value (no global registry to reset between tests): the grids and the
data factories bound in one module. Targets are ``package.module:function`` or
``path/to/file.py:function``; a file is imported under a module name derived from its path
so that worker processes can import it the same way. A failed lookup lists what exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs

from gridspec.decorators import (AUTO, FactorySpec, GridFunction, accepted_params, did_you_mean, factory_label,
                                 factory_spec, required_params)
from gridspec.errors import GridError, GridSpecError, LookupFailed
from gridspec.union import part_label

__all__ = ["AUTO", "Registry", "check_axes", "check_factories", "load_module", "load_target", "module_of", "scan"]

# Axes named like a training setting: gridspec honours some itself (HONOURED); the others
# must be taken by name by the model function or a factory, never only through **kwargs.
SETTING_AXES = frozenset({"epochs", "batch_size", "steps_per_epoch", "validation_steps", "seed",
                          "repeats", "callbacks", "verbose", "shuffle", "validation_split",
                          "initial_epoch", "class_weight", "sample_weight", "workers"})




@attrs.frozen
class Registry:
    """What one module declares: its grids and its data factories, in definition order."""

    module: str
    grids: tuple[tuple[str, GridFunction], ...]
    factories: tuple[FactorySpec, ...]

    def of_kind(self, kind: str) -> tuple[FactorySpec, ...]:
        return tuple(f for f in self.factories if f.kind == kind)

    def grid(self, name: str) -> GridFunction:
        for grid_name, fn in self.grids:
            if grid_name == name:
                return fn
        names = [n for n, _ in self.grids]
        found = ", ".join(names) if names else "none"
        raise LookupFailed(
            f"no @grid function {name!r} in module {self.module}{did_you_mean(name, names)} "
            f"(grids found: {found})"
        )

    def factory(self, kind: str, choice: Any) -> Callable[..., Any] | None:
        """Resolve ``train=`` / ``val=``: AUTO, a registered name, a callable, or None."""
        if choice is None:
            if kind == "train":
                raise LookupFailed("train=None: a search needs training data; pass a factory or a name")
            return None
        if callable(choice):
            return choice
        candidates = self.of_kind(kind)
        if choice is AUTO:
            if not candidates:
                if kind == "val":
                    return None
                others = ", ".join(f.label for f in self.factories) or "nothing"
                raise LookupFailed(
                    f"no @train_data factory in module {self.module}; found: {others}. "
                    f"Decorate the function that yields (x, y) batches with @gs.train_data, "
                    f"or pass train=<callable> to search()"
                )
            if len(candidates) > 1:
                names = ", ".join(repr(f.name) for f in candidates)
                raise LookupFailed(
                    f"several @{kind}_data factories in module {self.module} ({names}); "
                    f"name one, such as search({kind}={candidates[0].name!r}) or --{kind} {candidates[0].name}"
                )
            return candidates[0].fn
        if isinstance(choice, str):
            for f in candidates:
                if f.name == choice:
                    return f.fn
            known = [f.name for f in candidates]
            raise LookupFailed(
                f"no @{kind}_data factory named {choice!r} in module {self.module}"
                f"{did_you_mean(choice, known)} (found: {', '.join(map(repr, known)) or 'none'})"
            )
        raise LookupFailed(
            f"{kind}= must be a factory's name, a callable or None (got {choice!r})"
        )


def scan(module: ModuleType) -> Registry:
    """Find the grids and data factories bound in ``module``'s namespace."""
    grids: list[tuple[str, GridFunction]] = []
    factories: list[FactorySpec] = []
    seen: set[int] = set()
    for name, value in list(vars(module).items()):
        if id(value) in seen:
            continue
        if isinstance(value, GridFunction):
            seen.add(id(value))
            grids.append((name, value))
        elif (spec := factory_spec(value)) is not None:
            seen.add(id(value))
            factories.append(spec)
    return Registry(module.__name__, tuple(grids), tuple(factories))


def _module_name_for(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem if stem.isidentifier() else "gridspec_user_" + "".join(
        c if c.isalnum() else "_" for c in stem
    )


def load_module(spec: str) -> ModuleType:
    """Import a dotted module name or a ``.py`` path (its folder goes on ``sys.path``)."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise LookupFailed(f"no such Python file: {spec}")
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = _module_name_for(path)
        existing = sys.modules.get(name)
        if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") == path:
            return existing
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise LookupFailed(f"cannot import {spec}: not a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise LookupFailed(
                f"no module named {spec!r} (looked in the current directory and sys.path); "
                f"give a dotted module name or a path such as models.py"
            ) from None
        raise


def split_target(target: str) -> tuple[str, str]:
    module, sep, function = target.rpartition(":")
    if not sep or not module or not function:
        raise LookupFailed(
            f"target {target!r} must be MODULE:FUNCTION, such as models:build or "
            f"path/to/models.py:build"
        )
    return module, function


def load_target(target: str) -> GridFunction:
    """``"models:build"`` -> the ``@grid`` function ``build`` of module ``models``."""
    module_name, function = split_target(target)
    module = load_module(module_name)
    value = getattr(module, function, None)
    if isinstance(value, GridFunction):
        return value
    registry = scan(module)
    if value is None:
        return registry.grid(function)  # raises, listing the grids found
    raise LookupFailed(
        f"{target}: {function} is not decorated with @gridspec.grid (got {type(value).__name__}); "
        f"grids found: {', '.join(n for n, _ in registry.grids) or 'none'}"
    )


def module_of(grid: GridFunction) -> ModuleType:
    """The module a grid was defined in, where its data factories are found."""
    module = sys.modules.get(grid.fn.__module__)
    if module is None:
        raise GridSpecError(f"the module of {grid.fn.__qualname__}() ({grid.fn.__module__}) is not imported")
    return module


def check_factories(grid: GridFunction, train: Callable[..., Any] | None, val: Callable[..., Any] | None) -> None:
    """Every factory parameter without a default must be a grid axis."""
    axes = grid.space.names
    for kind, fn in (("train", train), ("val", val)):
        if fn is None:
            continue
        for name in required_params(fn):
            if name not in axes:
                raise GridError(
                    f"data factory {factory_label(fn, kind)} has a parameter {name!r} that is not a "
                    f"grid axis; a factory takes no arguments or only grid axes "
                    f"(axes: {', '.join(axes)}){did_you_mean(name, axes)}"
                )
            for number, part in enumerate(grid.space.parts, start=1):
                if name not in part.names:
                    raise GridError(
                        f"data factory {factory_label(fn, kind)} has a parameter {name!r} with no "
                        f"default, and {part_label(number, part)} has no axis {name!r}: an axis a "
                        f"sub-grid leaves out is not passed; give {name} a default value or add "
                        f"{name}=[...] to that sub-grid"
                    )


def check_axes(grid: GridFunction, train: Callable[..., Any] | None, val: Callable[..., Any] | None,
               arrays: bool) -> None:
    """Every axis must reach someone: the model function or a data factory, or gridspec
    itself (``epochs``; ``batch_size`` for in-memory arrays). An axis named like a training
    setting that only a ``**kwargs`` would swallow is refused: it would be a silent no-op."""
    axes = grid.space.names
    model_names, model_kw = accepted_params(grid.fn)
    named = set(model_names)
    catch_all = model_kw
    for fn in (train, val):
        if fn is not None:
            names, var_kw = accepted_params(fn)
            named |= names
            catch_all = catch_all or var_kw
    honoured = {"epochs"} | ({"batch_size"} if arrays else set())
    for axis in axes:
        if axis in named or axis in honoured:
            continue
        value = list(grid.space.axes[axes.index(axis)].values)
        if catch_all and axis not in SETTING_AXES:
            continue
        if axis in SETTING_AXES:
            raise GridError(
                f"grid axis {axis}={value!r} is named like a training setting that gridspec can't "
                f"vary per trial here, and {grid.fn.__qualname__}() takes it only through **kwargs, "
                f"so every trial would be the same; take {axis!r} as a named parameter and use it, "
                f"or set it once with search({axis}=...)"
                + (" (batch_size is honoured only for in-memory (x, y) arrays, or by a data "
                   "factory that takes batch_size)" if axis == "batch_size" else "")
            )
        raise GridError(
            f"{grid.fn.__qualname__}() has no parameter {axis!r} for grid axis "
            f"{axis}={value!r}, and no data factory takes it either"
            f"{did_you_mean(axis, model_names)}"
        )
