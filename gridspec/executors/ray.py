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

The spec is ``gridspec.runspec.RunSpec``, the same picklable "what to run" the local
worker processes get.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from gridspec.errors import GridSpecError, require_extra
from gridspec.executors.base import Executor, settle
from gridspec.result import Trial
from gridspec.trial import TrialRunner, TrialTask

__all__ = ["RayExecutor", "import_ray"]


def import_ray() -> Any:
    """``ray``, or a ``MissingExtra`` error saying which extra to install."""
    return require_extra("ray", "ray", 'executor="ray"', package="Ray")


_RUNNERS: dict[str, TrialRunner] = {}  # per worker process: one runner per search


def run_trials(search_key: str, spec: Any, tasks: list[TrialTask]) -> list[Any]:
    """The Ray task body: the worker's runner for this search (any spec with ``.runner()``,
    built once per worker process and search) runs one group of trials; one outcome each
    (a ``Trial``, or the user mistake that stopped it)."""
    os.environ["GRIDSPEC_WORKER"] = "ray"  # a module that searches at import must not recurse
    runner = _RUNNERS.get(search_key)
    if runner is None:
        _RUNNERS.clear()  # a new search: release the previous one's data
        runner = _RUNNERS[search_key] = spec.runner()
    return list(runner.run_many(tasks))


# -- the executor ------------------------------------------------------------------------------
class RayExecutor(Executor):
    """Runs each ``TrialTask`` as a Ray task (``resources`` per trial: ``num_cpus``, ``num_gpus``).

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
        self._remote = ray.remote(max_retries=0, **options)(run_trials)
        self.capacity = _capacity(ray.cluster_resources(), options)
        self._pending: set[Any] = set()

    def submit_many(self, tasks: Sequence[TrialTask]) -> list[Future[Trial]]:
        futures: list[Future[Trial]] = [Future() for _ in tasks]
        self._send(list(tasks), futures)
        return futures

    def _send(self, tasks: list[TrialTask], futures: list[Future[Trial]]) -> None:
        ref = self._remote.remote(self._key, self._spec_ref, tasks)
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
            _settle(futures, outcome)

        ref.future().add_done_callback(done)

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


def _settle(futures: list[Future[Trial]], done: Future[Any]) -> None:
    """Copy a Ray result to our futures; a task's own exception travels unwrapped."""
    exc = done.exception()
    if exc is None:
        settle(futures, done.result())
        return
    cause = getattr(exc, "cause", None)
    settle(futures, [cause if isinstance(cause, BaseException) else exc] * len(futures))
