"""The Ray executor: each trial is a Ray task, on a local instance or an existing cluster.

Follows ``concurrent.futures``: ``submit(task) -> Future[Trial]``. A task travels as data —
a ``RunSpec`` (where the grid and its data factories live, and the search's settings) plus
the ``TrialTask`` — and the Ray worker imports the user's module itself, rebuilds a
``TrialRunner`` once per worker process and search, and runs the trial there. Trials come
back as ``Trial`` records; the search process stays the only one that writes results (and
the journal). Ray is imported only here, and only when a search asks for it.

Cluster caveat: workers must be able to import gridspec, TensorFlow and the user's module
(install them on every node, or call ``ray.init(runtime_env=...)`` before ``search()``),
and halving's checkpoints (``TrialSettings.checkpoint_dir``, under ``$GRIDSPEC_CHECKPOINT_DIR``
or the system temp folder) must be on a filesystem every node shares.

``RunSpec`` is this branch's minimal version of the picklable "what to run" that the
worker-process executor needs too; the two are meant to become one.
"""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from types import ModuleType
from typing import Any

import attrs

from gridspec.decorators import GridFunction
from gridspec.errors import GridSpecError
from gridspec.result import Trial
from gridspec.trial import TrialRunner, TrialSettings, TrialTask

__all__ = ["RayExecutor", "RunSpec", "import_ray"]

_INSTALL_HINT = 'executor="ray" needs Ray; install it with pip install "gridspec[ray]"'


def import_ray() -> Any:
    """``ray``, or a ``GridSpecError`` saying which extra to install."""
    try:
        import ray
    except ImportError:
        raise GridSpecError(_INSTALL_HINT) from None
    return ray


# -- what a worker needs to rebuild the search's TrialRunner -----------------------------------
@attrs.frozen
class _Ref:
    """A module-level object named by ``module`` and ``name`` (imported by the worker)."""

    module: str
    name: str


def _module_file(module: ModuleType) -> str | None:
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if path else None


def _ref(fn: Any) -> Any:
    """A factory as a reference when the worker can import it, else the callable itself
    (cloudpickled by value, e.g. a lambda or a closure given as ``train=``)."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    name = getattr(fn, "__qualname__", "")
    if module is None or module.__name__ == "__main__" or "<" in name or getattr(module, name.split(".")[0], None) is None:
        return fn
    value: Any = module
    for part in name.split("."):
        value = getattr(value, part, None)
    return _Ref(module.__name__, name) if value is fn else fn


@attrs.frozen
class RunSpec:
    """Everything a worker needs to run trials of one search, as picklable data."""

    module: str  # the grid's module name in the search process
    module_file: str | None  # its file, for modules loaded from a path (and __main__)
    grid_name: str  # the module attribute holding the @grid function
    train: Any  # _Ref or a callable
    val: Any  # _Ref, a callable or None
    settings: TrialSettings
    sys_path: tuple[str, ...] = ()  # folders the search process imported the module from
    callbacks: tuple[Any, ...] = ()

    @classmethod
    def of(cls, grid: GridFunction, train: Callable[..., Any], val: Callable[..., Any] | None,
           settings: TrialSettings, callbacks: Sequence[Any] = ()) -> RunSpec:
        module = sys.modules[grid.fn.__module__]
        names = [n for n, v in vars(module).items() if v is grid]
        if not names:
            raise GridSpecError(
                f'executor="ray" needs {grid.fn.__qualname__}() to be defined at the top level of '
                f"module {module.__name__}, so that Ray workers can import it"
            )
        path = _module_file(module)
        folders = [os.getcwd()] + ([os.path.dirname(path)] if path else [])
        return cls(
            module=module.__name__,
            module_file=path,
            grid_name=names[0],
            train=_ref(train),
            val=None if val is None else _ref(val),
            settings=settings,
            sys_path=tuple(dict.fromkeys(folders)),
            callbacks=tuple(callbacks),
        )

    def _import(self) -> ModuleType:
        for folder in self.sys_path:
            if os.path.isdir(folder) and folder not in sys.path:
                sys.path.append(folder)
        if self.module != "__main__":
            try:
                return importlib.import_module(self.module)
            except ModuleNotFoundError as exc:
                if not (self.module_file and exc.name and self.module.startswith(exc.name)):
                    raise
        if self.module_file is None:
            raise GridSpecError(f"module {self.module} can't be imported on this Ray worker")
        from gridspec.registry import load_module

        return load_module(self.module_file)

    def runner(self) -> TrialRunner:
        """A ``TrialRunner`` built in this (worker) process from the imported module."""
        module = self._import()
        grid = getattr(module, self.grid_name)

        def resolve(ref: Any) -> Any:
            if not isinstance(ref, _Ref):
                return ref
            value: Any = module if ref.module == self.module else importlib.import_module(ref.module)
            for part in ref.name.split("."):
                value = getattr(value, part)
            return value

        return TrialRunner(grid, resolve(self.train), resolve(self.val), self.settings, callbacks=self.callbacks)


_RUNNERS: dict[str, TrialRunner] = {}  # per worker process: one runner per search


def run_trial(search_key: str, spec: Any, task: TrialTask) -> Trial:
    """The Ray task body: the worker's runner for this search (any spec with ``.runner()``,
    built once per worker process and search) runs one trial."""
    os.environ["GRIDSPEC_WORKER"] = "ray"  # a module that searches at import must not recurse
    runner = _RUNNERS.get(search_key)
    if runner is None:
        _RUNNERS.clear()  # a new search: release the previous one's data
        runner = _RUNNERS[search_key] = spec.runner()
    return runner.run(task)


# -- the executor ------------------------------------------------------------------------------
class RayExecutor:
    """Runs each ``TrialTask`` as a Ray task (``resources`` per trial: ``num_cpus``, ``num_gpus``).

    Connects to ``address`` (``"auto"``, ``"ray://head:10001"``, ``"127.0.0.1:6379"``), or
    starts a local instance when it is None (Ray's own ``RAY_ADDRESS`` is honoured). A Ray
    already initialised by the caller is used as it is, and left running.
    """

    def __init__(self, spec: Any, *, address: str | None = None,
                 resources: Mapping[str, float] | None = None) -> None:
        if os.environ.get("GRIDSPEC_WORKER"):
            raise GridSpecError(
                "search() was called inside a gridspec worker: importing the module that defines "
                "the grid starts a search; put the search under if __name__ == '__main__':"
            )
        ray = import_ray()
        options = {"num_cpus": 1, **(resources or {})}
        unknown = set(options) - {"num_cpus", "num_gpus", "memory", "resources"}
        if unknown:
            raise GridSpecError(
                f"trial_resources may name num_cpus, num_gpus, memory and resources "
                f"(got {', '.join(sorted(unknown))})"
            )
        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            local = {"_node_ip_address": "127.0.0.1"} if address == "local" else {}
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **local)
        self.spec = spec
        self._key = uuid.uuid4().hex
        self._spec_ref = ray.put(spec)
        self._remote = ray.remote(max_retries=0, **options)(run_trial)
        self.capacity = _capacity(ray.cluster_resources(), options)
        self._pending: set[Any] = set()

    def submit(self, task: TrialTask) -> Future[Trial]:
        future: Future[Trial] = Future()
        ref = self._remote.remote(self._key, self._spec_ref, task)
        self._pending.add(ref)

        def settle(done: Future[Any]) -> None:
            self._pending.discard(ref)
            _settle(future, done)

        ref.future().add_done_callback(settle)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Cancel what is still running (an interrupted search), and stop a Ray we started."""
        if not self._ray.is_initialized():
            return
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        if self._owned:
            self._ray.shutdown()


def _capacity(cluster: Mapping[str, float], options: Mapping[str, Any]) -> int:
    """Trials the cluster can run at once with ``options`` per trial (at least one)."""
    fits = []
    for key, resource in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        need = float(options.get(key) or 0)
        if need > 0:
            fits.append(int(float(cluster.get(resource, 0)) // need))
    return max(1, min(fits)) if fits else max(1, int(cluster.get("CPU", 1)))


def _settle(future: Future[Trial], done: Future[Any]) -> None:
    """Copy a Ray result to our future; a task's own exception travels unwrapped."""
    exc = done.exception()
    if exc is None:
        future.set_result(done.result())
        return
    cause = getattr(exc, "cause", None)
    future.set_exception(cause if isinstance(cause, BaseException) else exc)
