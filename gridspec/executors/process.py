"""Local worker processes: ``workers=N``, ``gpus=[0, 1]``, ``executor="process"``.

Each worker is a *spawned* process (never forked: the parent may have TensorFlow loaded)
that imports the user's module once, from a ``RunSpec``, and then runs many trials. The
parent keeps one thread per worker slot that hands the slot's process one ``TrialTask`` at
a time over a pipe and resolves the task's future with the ``Trial`` that comes back; the
parent alone reports results (and writes any journal).

- Threads: a worker gets ``cores // workers`` intra- and inter-op threads (at least 1), so
  workers x threads <= cores.
- GPUs: with ``gpus=[0, 1]`` worker ``i`` sees only ``gpus[i % len(gpus)]`` through
  ``CUDA_VISIBLE_DEVICES`` (with fewer workers than GPUs, ``gpus[i::workers]``); every worker gets
  ``TF_FORCE_GPU_ALLOW_GROWTH`` (and JAX's ``XLA_PYTHON_CLIENT_PREALLOCATE=false``) so that
  several workers can share a GPU.
- Crashes: a worker that dies mid-trial (segfault, ``os._exit``, OOM-kill) turns that trial
  into a FAILED trial naming the exit code, and the slot starts a fresh worker. A fused group
  whose worker dies runs again one member at a time, so only the culprit fails.
- Memory: TensorFlow grows a process's resident memory by a few MiB per model however it is
  cleaned up, so a worker retires when its memory has grown by ``RECYCLE_GROWTH`` past its
  baseline (its memory after ``RECYCLE_BASELINE_UNITS`` units of work: a fused group counts
  once, as a trial alone does) and it ran at least ``RECYCLE_MIN_UNITS`` units, or once it
  ran ``GRIDSPEC_WORKER_MAX_TRIALS`` trials when that is set; its replacement is started
  ahead of time, while the old one finishes its last trials.
- Ctrl-C: workers ignore SIGINT, so the trials in flight can finish when the parent asks
  for a graceful stop; ``shutdown(cancel=True)`` kills them at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, NoReturn

from gridspec.errors import GridSpecError
from gridspec.executors.base import Executor, settle
from gridspec.records import TrialTask
from gridspec.result import Trial
from gridspec.runspec import RunSpec
from gridspec.trial import failed_trial

__all__ = ["ProcessExecutor", "WorkerCrashed", "available_cores", "worker_environment"]

_STOP = None
RECYCLE_GROWTH = 0.10  # retire a worker whose RSS grew 10 % past its baseline
RECYCLE_BASELINE_UNITS = 3  # the baseline: its RSS after this many groups (TensorFlow warmed up)
RECYCLE_MIN_UNITS = 8  # ... and not before it ran this many groups (a start-up costs seconds)
_ENV_LOCK = threading.Lock()


class WorkerCrashed(RuntimeError):
    """A worker process died while running a trial."""


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_environment(
    slot: int, workers: int, gpus: Sequence[int] | None = None, cores: int | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment variables worker ``slot`` (0-based) of ``workers`` starts with."""
    base = os.environ if base is None else base
    cores = available_cores() if cores is None else cores
    threads = str(max(1, cores // workers))
    env = {
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "TF_CPP_MIN_LOG_LEVEL": base.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "GRIDSPEC_WORKER": str(slot),
    }
    if gpus:  # one GPU per worker (round-robin); fewer workers than GPUs: a share each
        mine = gpus[slot::workers] if workers < len(gpus) else [gpus[slot % len(gpus)]]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, mine))
    if "TF_FORCE_GPU_ALLOW_GROWTH" not in base:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    if "XLA_PYTHON_CLIENT_PREALLOCATE" not in base:  # JAX's own way to share a GPU
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not on Linux: peak RSS is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _set_threads(threads: int) -> None:
    """TensorFlow's thread pools, when Keras runs on TensorFlow (other backends read
    ``OMP_NUM_THREADS``; TensorFlow is not imported for them)."""
    import keras

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _worker_main(conn: Any, spec: RunSpec, env: dict[str, str]) -> None:
    """A worker: set threads, import the user's module once, then run trials until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    os.environ.update(env)
    try:
        _set_threads(int(env["TF_NUM_INTRAOP_THREADS"]))
        runner = spec.runner(progress=lambda event: conn.send(("progress", event)))  # per epoch
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("init_error", _portable(exc)))
        return
    conn.send(("ready", os.getpid(), {k: os.environ.get(k) for k in env}))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            _leave()  # the parent went away
        if task is _STOP:
            _leave()
        tasks = task  # a group: trials that may train together
        try:
            outcomes = [_portable(o) if isinstance(o, BaseException) else o for o in runner.run_many(tasks)]
        except Exception as exc:  # a user mistake (GridSpecError): the parent decides
            outcomes = [_portable(exc)] * len(tasks)
        conn.send(("ok", outcomes, _rss_mib()))


def _leave() -> NoReturn:
    """End a worker at once: its outcomes are sent and it holds nothing to save, while the
    interpreter's orderly exit with TensorFlow loaded takes a second or more, which the
    search would wait for."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a ``GridSpecError`` with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        if isinstance(exc, GridSpecError):
            return exc
    except Exception:
        pass
    return GridSpecError(f"worker process could not load the search: {type(exc).__name__}: {exc}")


class _Worker:
    """One spawned process and the parent's end of its pipe."""

    def __init__(self, ctx: Any, spec: RunSpec, env: dict[str, str]) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, spec, env), daemon=True,
                                   name=f"gridspec-worker-{env['GRIDSPEC_WORKER']}")
        with _ENV_LOCK:  # the child's interpreter starts with these (before any import)
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                self.process.start()
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        child.close()
        self.pid: int | None = None
        self.env: dict[str, str | None] = {}
        self.ready = False
        self.trials = 0
        self.units = 0  # groups run (a fused group of 12 is one unit, as one trial alone is)
        self.first_rss: float | None = None
        self.rss: float | None = None

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self.process.join()
            raise GridSpecError(
                f"a worker process exited with code {self.process.exitcode} while importing the "
                f"search; run it with workers=1 to see the error"
            ) from None
        if message[0] == "init_error":
            self.close()
            raise message[1]
        _, self.pid, self.env = message
        self.ready = True

    def should_retire(self, max_trials: int) -> bool:
        if max_trials and self.trials >= max_trials:
            return True
        if self.first_rss is None or self.rss is None or self.units < RECYCLE_MIN_UNITS:
            return False
        return self.rss > self.first_rss * (1 + RECYCLE_GROWTH)

    def nearly_retiring(self, max_trials: int) -> bool:
        if max_trials and self.trials >= max_trials - 2:
            return True
        if self.first_rss is None or self.rss is None or self.units < RECYCLE_MIN_UNITS - 2:
            return False
        return self.rss > self.first_rss * (1 + RECYCLE_GROWTH * 0.6)

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(_STOP)
            except (OSError, ValueError):
                pass
        self.process.join(timeout=None if kill else 30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessExecutor(Executor):
    """``workers`` spawned processes, each running one group of trials at a time."""

    def __init__(self, spec: RunSpec, workers: int = 1, gpus: Sequence[int] | None = None,
                 max_trials_per_worker: int | None = None, progress: Callable[[Any], None] | None = None) -> None:
        self.spec = spec
        self.workers = workers
        self.capacity = workers
        self.gpus = list(gpus) if gpus else None
        if max_trials_per_worker is None:
            max_trials_per_worker = int(os.environ.get("GRIDSPEC_WORKER_MAX_TRIALS", "0") or 0)
        self.max_trials = max_trials_per_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self.info: list[dict[str, Any]] = []  # one entry per started worker: pid, env
        self.dispatch: list[float] = []  # per trial: send-to-result seconds minus the trial's own
        self.progress = progress  # who hears the workers' EpochEnded events (called from slot threads)
        self._first: Future[None] = Future()  # the first worker ready, or its start-up error
        self._envs = [worker_environment(i, workers, self.gpus) for i in range(workers)]
        self._threads = [
            threading.Thread(target=self._slot, args=(i,), daemon=True, name=f"gridspec-slot-{i}")
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()


    def wait_ready(self) -> None:
        """Until one worker has imported the search and read the probed data (the others
        start meanwhile); its start-up error (a user mistake) raises here."""
        self._first.result()

    def submit_many(self, tasks: Sequence[TrialTask]) -> list[Future[Trial]]:
        if self._closed:
            raise RuntimeError("submit() after shutdown()")
        futures: list[Future[Trial]] = [Future() for _ in tasks]
        self._queue.put((list(tasks), futures, time.perf_counter()))
        return futures

    # -- the slot threads --------------------------------------------------------------------
    def _start(self, slot: int) -> _Worker:
        worker = _Worker(self._ctx, self.spec, self._envs[slot])
        with self._lock:
            self._live.add(worker)
        return worker

    def _retire(self, worker: _Worker, kill: bool = False) -> None:
        with self._lock:
            self._live.discard(worker)
        worker.close(kill=kill)

    def _slot(self, slot: int) -> None:
        first = self._start(slot)
        worker: _Worker | None = first
        spare: _Worker | None = None
        init_error: BaseException | None = None
        try:
            try:  # at once, not at the first trial: ``wait_ready`` hears how it went
                first.wait_ready()
                self._resolve_first(None)
            except BaseException as exc:  # noqa: BLE001 - the user's module or data failed
                init_error, worker = exc, None
                self._retire(first, kill=True)
                self._resolve_first(exc)
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                tasks, futures, retry = item
                if retry is not True and not all([f.set_running_or_notify_cancel() for f in futures]):
                    for f in futures:  # a cancelled group (shutdown): release the rest too
                        if f.running():
                            f.set_exception(KeyboardInterrupt())
                    continue
                if init_error is not None:
                    settle(futures, [init_error] * len(futures))
                    continue
                try:
                    if worker is None:
                        worker, spare = spare or self._start(slot), None
                    worker.wait_ready()
                except BaseException as exc:  # noqa: BLE001 - the user's module failed to load
                    init_error = exc
                    worker = None
                    settle(futures, [exc] * len(futures))
                    continue
                if worker.trials == 0:
                    self.info.append({"slot": slot, "pid": worker.pid, "env": worker.env})
                if spare is None and worker.nearly_retiring(self.max_trials):
                    spare = self._start(slot)  # imports TensorFlow while this one still trains
                outcome = self._run(worker, tasks, futures)
                if outcome == "crashed" or self._closed:
                    self._retire(worker, kill=True)
                    worker = None
                elif worker.should_retire(self.max_trials):
                    self._retire(worker)
                    worker = None
        finally:
            for leftover in (worker, spare):
                if leftover is not None:
                    self._retire(leftover, kill=self._closed)

    def _resolve_first(self, error: BaseException | None) -> None:
        with self._lock:
            if self._first.done():
                return
            if error is None:
                self._first.set_result(None)
            else:
                self._first.set_exception(error)

    def _run(self, worker: _Worker, tasks: list[TrialTask], futures: list[Future[Trial]]) -> str:
        started = time.perf_counter()
        try:
            worker.conn.send(tasks)
            message = worker.conn.recv()
            while message[0] == "progress":  # a running trial's epochs, then its outcome
                self._forward(message[1])
                message = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            if self._closed:
                settle(futures, [KeyboardInterrupt()] * len(futures))
                return "crashed"
            if len(tasks) > 1:  # a fused group: its members run again, each alone
                for task, future in zip(tasks, futures):
                    self._queue.put(([task], [future], True))
                return "crashed"
            numbers = ", ".join(str(t.number) for t in tasks)
            error = WorkerCrashed(
                f"worker process {worker.pid} died while running trial{'s' if len(tasks) > 1 else ''} "
                f"{numbers} ({_exit_text(worker.process.exitcode)}); a fresh worker runs the next trials"
            )
            elapsed = (time.perf_counter() - started) / len(tasks)
            settle(futures, [failed_trial(t, error, elapsed) for t in tasks])
            return "crashed"
        kind, outcomes, rss = message
        worker.trials += len(tasks)
        worker.units += 1
        worker.rss = rss
        if worker.units == RECYCLE_BASELINE_UNITS:  # the first groups grow it once, for good
            worker.first_rss = rss
        own = sum(o.duration for o in outcomes if isinstance(o, Trial))
        self.dispatch.append((time.perf_counter() - started - own) / len(tasks))
        settle(futures, outcomes)
        return kind

    def _forward(self, event: Any) -> None:
        if self.progress is not None:
            try:
                self.progress(event)
            except Exception:  # noqa: BLE001 - a failing display must not lose the trial
                pass

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the workers: after their current trial, or at once with ``cancel=True``."""
        if cancel:
            self._closed = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    for future in item[1]:
                        future.cancel()
            with self._lock:
                live = list(self._live)
            for worker in live:  # unblocks the slot threads waiting on a trial
                worker.process.kill()
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=60)
        self._closed = True
