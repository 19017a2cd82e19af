"""The Ray executor: each group of trials is a Ray task, on a local instance or an existing cluster.

Follows ``concurrent.futures``: ``submit_many(tasks) -> [Future[Trial], ...]``, one Ray task
per group (a fused group, or one trial alone). It travels as data — a ``RunSpec`` (where the
grid and its data factories live, and the search's settings) plus the ``TrialTask``s — and
the Ray worker imports the user's module itself, rebuilds a ``TrialRunner`` once per worker
process and search, and runs the group there. Trials come
back as ``Trial`` records; the search process stays the only one that writes results (and
the journal). Ray is imported only here, and only when a search asks for it.

Cluster caveat: workers must be able to import gridspec, TensorFlow and the user's module
(install them on every node, or call ``ray.init(runtime_env=...)`` before ``search()``).

No shared filesystem is needed for halving-type strategies: each worker process keeps its
checkpoints in a private temporary folder, and a trial's checkpoint (weights, optimizer
state, history and seconds so far) comes back as bytes beside its ``Trial`` (never in it).
The search's process keeps them in its own ``checkpoint_dir`` and sends them (through Ray's
object store) with the task that continues the trial, on whichever node it lands; a worker
that still holds that very checkpoint (it ran the trial's previous rung) does not fetch it.

The spec is ``gridspec.runspec.RunSpec``, the same picklable "what to run" the local
worker processes get.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import attrs

from gridspec.errors import GridSpecError, require_extra
from gridspec.executors.base import Executor, settle
from gridspec.records import TrialTask
from gridspec.result import Trial, TrialStatus
from gridspec.training import continuation
from gridspec.trial import TrialRunner

__all__ = ["RayExecutor", "import_ray"]


def import_ray() -> Any:
    """``ray``, or a ``MissingExtra`` error saying which extra to install."""
    return require_extra("ray", "ray", 'executor="ray"', package="Ray")


_RUNNERS: dict[str, TrialRunner] = {}  # per worker process: one runner per search
# Per worker process: trial number -> the epoch its checkpoint in this worker's own folder
# ended at. A continuing task that starts there needs nothing from the search's process.
_LOCAL: dict[int, int] = {}

Carried = dict[int, dict[str, bytes]]  # trial number -> its checkpoint files, by name


def run_trials(search_key: str, spec: Any, tasks: list[TrialTask],
               carried: Mapping[int, Any] | None = None) -> tuple[list[Any], Carried]:
    """The Ray task body: the worker's runner for this search (any spec with ``.runner()``,
    built once per worker process and search) runs one group of trials. Returns one outcome
    each (a ``Trial``, or the user mistake that stopped it) and, beside them, the checkpoint
    files of the trials a halving-type strategy may continue. ``carried`` holds, per
    continuing trial, an object reference to its checkpoint files (fetched only when this
    worker doesn't hold that checkpoint already)."""
    os.environ["GRIDSPEC_WORKER"] = "ray"  # a module that searches at import must not recurse
    runner = _RUNNERS.get(search_key)
    if runner is None:
        _forget()  # a new search: release the previous one's data and checkpoints
        runner = _RUNNERS[search_key] = _on_this_node(spec, search_key).runner()
    folder = runner.settings.folders.checkpoint_dir
    for task in tasks:
        ref = (carried or {}).get(task.number)
        if task.start_epoch and ref is not None and _LOCAL.get(task.number) != task.start_epoch:
            continuation.unpack(folder, task.number, import_ray().get(ref))
    outcomes = list(runner.run_many(tasks)) if tasks else []  # none: the start-up probe
    back: Carried = {}
    for task, outcome in zip(tasks, outcomes):
        done = isinstance(outcome, Trial) and outcome.status is TrialStatus.COMPLETE
        files = continuation.pack(folder, task.number, remove=not done) if folder else {}
        if done and files:
            back[task.number] = files
            _LOCAL[task.number] = outcome.epochs
        else:
            _LOCAL.pop(task.number, None)
    return outcomes, back


def _node_folder(search_key: str) -> str:
    """This node's folder for one search's worker checkpoints (removed when the search ends)."""
    return os.path.join(tempfile.gettempdir(), f"gridspec-ray-{search_key}")


def _on_this_node(spec: Any, search_key: str) -> Any:
    """``spec`` with checkpoints in a folder of this worker's own (no shared disk assumed)."""
    settings: Any = getattr(spec, "settings", None)
    folders = getattr(settings, "folders", None)
    if folders is None or folders.checkpoint_dir is None or not attrs.has(type(spec)):
        return spec
    os.makedirs(_node_folder(search_key), exist_ok=True)
    local = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=_node_folder(search_key))
    return attrs.evolve(spec, settings=attrs.evolve(settings, folders=attrs.evolve(folders, checkpoint_dir=local)))


def drop_node_folder(search_key: str) -> None:
    """The Ray task that ends a search on one node: its workers' checkpoints are removed."""
    shutil.rmtree(_node_folder(search_key), ignore_errors=True)


def _forget() -> None:
    for key in _RUNNERS:
        drop_node_folder(key)
    _RUNNERS.clear()
    _LOCAL.clear()


# -- the executor ------------------------------------------------------------------------------
class RayExecutor(Executor):
    """Runs each group of ``TrialTask``s as one Ray task (``resources`` per task: ``num_cpus``, ``num_gpus``).

    Connects to ``address`` (``"auto"``, ``"ray://head:10001"``, ``"127.0.0.1:6379"``), or
    starts a local instance when it is None (Ray's own ``RAY_ADDRESS`` is honoured). A Ray
    already initialised by the caller is used as it is, and left running.
    """

    def __init__(self, spec: Any, *, address: str | None = None,
                 resources: Mapping[str, float] | None = None, group_size: int = 1) -> None:
        from gridspec.executors import check_not_in_worker

        check_not_in_worker()
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
        # A trial whose worker or node dies (a lost node, out of memory, a native crash) runs
        # once more, wherever Ray finds room; dying twice makes it FAILED. Its own exceptions
        # are never retried: they are results.
        self._remote = ray.remote(max_retries=1, retry_exceptions=False, **options)(run_trials)
        self.capacity = _capacity(ray.cluster_resources(), options)
        self._pending: set[Any] = set()
        # Where this search keeps halving's checkpoints: results bring them here, continuing
        # tasks take them to their node (the nodes share no filesystem with us).
        folders = getattr(getattr(spec, "settings", None), "folders", None)
        self._folder: str | None = folders.checkpoint_dir if folders is not None else None

    def wait_ready(self) -> None:
        """One Ray worker imports the search and reads the probed data (keeping them for the
        trials it runs next); a user mistake there raises here, before anything trains."""
        ref = self._remote.remote(self._key, self._spec_ref, [], None)
        self._pending.add(ref)
        try:
            self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            raise _unwrapped(exc) from None
        finally:
            self._pending.discard(ref)

    def submit_many(self, tasks: Sequence[TrialTask]) -> list[Future[Trial]]:
        futures: list[Future[Trial]] = [Future() for _ in tasks]
        self._send(list(tasks), futures)
        return futures

    def _send(self, tasks: list[TrialTask], futures: list[Future[Trial]]) -> None:
        carried = {}
        for task in tasks:
            files = continuation.pack(self._folder, task.number) if task.start_epoch else {}
            if files:  # in the object store: fetched only by a worker that lacks this checkpoint
                carried[task.number] = self._ray.put(files)
        ref = self._remote.remote(self._key, self._spec_ref, tasks, carried)
        self._pending.add(ref)

        def done(outcome: Future[Any]) -> None:
            self._pending.discard(ref)
            exc = outcome.exception()
            if (len(tasks) > 1 and exc is not None and getattr(exc, "cause", None) is None
                    and self._ray.is_initialized()):
                # the worker died under a fused group: its members run again, each alone,
                # so only the culprit fails (as with local worker processes)
                for task, future in zip(tasks, futures):
                    self._send([task], [future])
                return
            _settle(futures, outcome, self._folder)

        ref.future().add_done_callback(done)

    def shutdown(self, cancel: bool = False) -> None:
        """Cancel what is still running (an interrupted search), remove the workers'
        checkpoints on every node (the search's own are the engine's), and stop a Ray we started."""
        if not self._ray.is_initialized():
            return
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        if self._folder is not None:
            with contextlib.suppress(Exception):  # never mask how the search ended
                _drop_node_folders_on(self._ray, self._key)
        if self._owned:
            self._ray.shutdown()


def _drop_node_folders_on(ray: Any, search_key: str) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    drop = ray.remote(num_cpus=0, max_retries=0)(drop_node_folder)
    refs = [drop.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(search_key) for node in ray.nodes() if node.get("Alive")]
    ray.wait(refs, num_returns=len(refs), timeout=10)  # best effort: a temp folder at worst


def _capacity(cluster: Mapping[str, float], options: Mapping[str, Any]) -> int:
    """Tasks the cluster can run at once with ``options`` per task (at least one)."""
    fits = []
    for key, resource in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        need = float(options.get(key) or 0)
        if need > 0:
            fits.append(int(float(cluster.get(resource, 0)) // need))
    return max(1, min(fits)) if fits else max(1, int(cluster.get("CPU", 1)))


def _settle(futures: list[Future[Trial]], done: Future[Any], folder: str | None = None) -> None:
    """Copy a Ray result to our futures (the checkpoints beside it into ``folder`` first, so a
    promotion finds them); a task's own exception travels unwrapped."""
    exc = done.exception()
    if exc is None:
        outcomes, back = done.result()
        for number, files in back.items():
            continuation.unpack(folder, number, files)
        settle(futures, outcomes)
        return
    settle(futures, [_unwrapped(exc)] * len(futures))


def _unwrapped(exc: BaseException) -> BaseException:
    """The task's own exception (a user mistake, a ``DataError``) out of Ray's wrapper."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
