"""``RunSpec``: a search's trial-running half as plain, picklable data.

A worker process (local, or a Ray task) gets a ``RunSpec`` and rebuilds the same
``TrialRunner`` the parent built, by importing the user's module itself: the grid and the
data factories travel as references (``module:qualname``, where the module is a dotted name
or the path of a ``.py`` file), never as pickled functions. Owns the rules for turning a
function into such a reference, with a clear error for functions that can't be found again
by name (lambdas, functions defined inside other functions). Knows nothing of executors.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from gridspec.decorators import GridFunction
from gridspec.errors import GridSpecError
from gridspec.records import TrialSettings
from gridspec.trial import TrialRunner

__all__ = ["RunSpec", "function_ref", "module_ref", "resolve_ref"]


def module_ref(name: str) -> str:
    """How another process imports module ``name``: a ``.py`` path or a dotted name.

    Top-level modules with a file (including ``__main__`` and files loaded by
    ``registry.load_module``) go by path, so a worker needs no particular working directory;
    modules inside packages go by their dotted name (workers inherit ``sys.path``).
    """
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None) if module is not None else None
    if file and file.endswith(".py") and (name == "__main__" or "." not in name):
        return os.path.abspath(file)
    return name


def function_ref(fn: Callable[..., Any], what: str) -> str:
    """``module:qualname`` for a module-level function, or a ``GridSpecError`` saying why not."""
    target = fn.fn if isinstance(fn, GridFunction) else fn
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise GridSpecError(
            f"{what}={getattr(target, '__qualname__', target)!r} can't be sent to worker processes: "
            f"they import functions by name, and this one is "
            f"{'a lambda or nested function' if qualname else 'not a function'}; "
            f"define it at the top level of an importable module (or a .py file), or use workers=1"
        )
    ref = f"{module_ref(module)}:{qualname}"
    found = _lookup(sys.modules.get(module), qualname)
    if found is not fn and found is not target:
        raise GridSpecError(
            f"{what}={qualname!r} can't be sent to worker processes: {module}.{qualname} is not "
            f"this function (it was redefined or replaced); define it once at module level, "
            f"or use workers=1"
        )
    return ref


def _lookup(module: Any, qualname: str) -> Any:
    value = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def resolve_ref(ref: str) -> Any:
    """The object a ``function_ref`` names, importing its module the way ``gridspec run`` does."""
    from gridspec.registry import load_module

    module_name, _, qualname = ref.rpartition(":")
    if module_name == "__main__" or (module_name.endswith(".py") and _is_main_file(module_name)):
        module: Any = sys.modules.get("__mp_main__") or sys.modules["__main__"]
    else:
        module = load_module(module_name)
    value = _lookup(module, qualname)
    if value is None:
        raise GridSpecError(f"worker process: {ref} not found after importing {module_name}")
    return value


def _is_main_file(path: str) -> bool:
    """Whether ``path`` is already imported as the main script (spawn's ``__mp_main__``)."""
    for name in ("__mp_main__", "__main__"):
        main = sys.modules.get(name)
        file = getattr(main, "__file__", None)
        if file and os.path.abspath(file) == path:
            return True
    return False


@attrs.frozen
class RunSpec:
    """Everything a worker needs to run trials of one search, as picklable data.

    ``grid``, ``train`` and ``val`` are ``module:qualname`` references; ``distribute`` is
    ``None`` or ``"mirrored"`` (a strategy object can't cross a process boundary);
    ``callbacks`` are pickled Keras callbacks (checked when the spec is made).
    """

    grid: str
    train: str
    val: str | None
    settings: TrialSettings
    distribute: str | None = None
    callbacks: bytes = pickle.dumps(())
    sys_path: tuple[str, ...] = ()  # folders a worker adds to sys.path (Ray workers inherit none)
    # The combination whose data a worker reads as it starts: data mistakes surface there,
    # before anything trains, and the search's own process never imports TensorFlow.
    probe: Mapping[str, Any] | None = None

    @classmethod
    def from_search(
        cls,
        grid: GridFunction,
        train: Callable[..., Any],
        val: Callable[..., Any] | None,
        settings: TrialSettings,
        callbacks: Sequence[Any] = (),
        distribute: Any = None,
        probe: Mapping[str, Any] | None = None,
    ) -> RunSpec:
        if distribute is not None and not isinstance(distribute, str):
            raise GridSpecError(
                f"distribute={distribute!r} can't be sent to worker processes; pass "
                f"distribute='mirrored' (each worker then builds its own strategy), or use workers=1"
            )
        try:
            pickled = pickle.dumps(tuple(callbacks))
        except Exception as exc:
            raise GridSpecError(
                f"callbacks={list(callbacks)!r} can't be sent to worker processes ({exc}); "
                f"use picklable callbacks, or workers=1"
            ) from None
        return cls(
            grid=function_ref(grid, "the grid"),
            train=function_ref(train, "train"),
            val=function_ref(val, "val") if val is not None else None,
            settings=settings,
            distribute=distribute,
            callbacks=pickled,
            sys_path=(os.getcwd(),),
            probe=dict(probe) if probe is not None else None,
        )

    def runner(self, progress: Callable[[Any], None] | None = None) -> TrialRunner:
        """Import the user's module (once per process), build the ``TrialRunner`` (running
        trials' epochs go to ``progress``) and read the ``probe`` combination's data (a user
        mistake raises here, as the worker starts)."""
        for folder in self.sys_path:
            if os.path.isdir(folder) and folder not in sys.path:
                sys.path.append(folder)
        grid = resolve_ref(self.grid)
        if not isinstance(grid, GridFunction):
            raise GridSpecError(f"worker process: {self.grid} is not a @grid function")
        runner = TrialRunner(
            grid,
            resolve_ref(self.train),
            resolve_ref(self.val) if self.val is not None else None,
            self.settings,
            callbacks=pickle.loads(self.callbacks),
            distribute=self.distribute,
            progress=progress,
        )
        if self.probe is not None:
            runner.prepare(self.probe)
        return runner
