"""Dispatch overhead per trial: Ray on a simulated two-node cluster vs local worker processes.

    PYTHONPATH=. python benchmarks/ray_dispatch.py [--trials 40] [--rounds 2] [--json PATH]

The workload is ``tiny_grid.py`` (a 4 -> units -> 1 MLP, batches of 8, one epoch of 4 steps): a
``strategy="random"`` sample of ``--trials`` combinations with ``fuse=1``, so every trial is
its own unit of work and lasts well under a second. Two executors, interleaved over
``--rounds`` (rotating order), each with two worker slots:

- ``workers=2``: gridspec's local worker processes (``ProcessExecutor``);
- ``executor="ray"`` on a cluster simulated on 127.0.0.1 as in ``tests/test_ray_cluster.py``:
  a head node with no CPUs and two worker nodes of one CPU each, every node with its own
  raylet and worker processes (``ray.cluster_utils.Cluster``).

Per trial, dispatch overhead = (time from ``executor.submit_many`` to the trial's future
being resolved in the search's process) - ``Trial.duration`` (the worker's own time in
``TrialRunner.run_many``). The executor is wrapped from outside (``gridspec.engine.make_executor``),
gridspec itself is unchanged. The first trial of each worker process carries that worker's
start-up (importing TensorFlow and the grid's module, building the runner): it is reported
apart, and the median is over the others. For Ray the Ray task body is wrapped too (on the
workers), to split the overhead into submit -> task start, task body outside ``run_many``,
and task end -> result in the search's process (all on one machine, so one clock).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_grid import build, train  # noqa: E402,F401

import gridspec.engine as engine  # noqa: E402
import gridspec.executors.ray as gray  # noqa: E402
from gridspec.executors import process  # noqa: E402

TASK_LOG = os.path.join(tempfile.gettempdir(), f"gridspec-ray-dispatch-{os.getpid()}.jsonl")


def logged_run_trials(search_key, spec, tasks, carried=None):
    """The Ray task body, timed on the worker (pickled by value: it runs on the Ray workers)."""
    import json as _json
    import os as _os
    import time as _time

    import gridspec.executors.ray as _gray  # on a worker: the original run_trials

    fresh_process = not getattr(_gray, "_bench_seen", False)
    _gray._bench_seen = True
    fresh_runner = search_key not in _gray._RUNNERS
    started = _time.time()
    outcomes, back = _gray.run_trials(search_key, spec, tasks, carried)
    ended = _time.time()
    with open(TASK_LOG, "a", encoding="utf-8") as f:
        f.write(_json.dumps(dict(pid=_os.getpid(), numbers=[t.number for t in tasks], start=started, end=ended,
                                 fresh_process=fresh_process, fresh_runner=fresh_runner)) + "\n")
    return outcomes, back


class Timing:
    """Submission and resolution times per trial number, from the search's process."""

    def __init__(self) -> None:
        self.submitted: dict[int, float] = {}
        self.resolved: dict[int, float] = {}
        self.first_of_worker: set[int] = set()
        self.executor = None
        original_make = engine.make_executor
        original_run = process.ProcessExecutor._run
        timing = self

        def make_executor(*args, **kwargs):
            executor = original_make(*args, **kwargs)
            timing.executor = executor
            submit_many = executor.submit_many

            def timed_submit_many(tasks):
                now = time.time()
                futures = submit_many(tasks)
                for task, future in zip(tasks, futures):
                    timing.submitted[task.number] = now
                    future.add_done_callback(lambda f, n=task.number: timing.resolved.__setitem__(n, time.time()))
                return futures

            executor.submit_many = timed_submit_many
            return executor

        def _run(executor, worker, tasks, futures):
            if worker.trials == 0:
                timing.first_of_worker.update(t.number for t in tasks)
            return original_run(executor, worker, tasks, futures)

        engine.make_executor = make_executor
        process.ProcessExecutor._run = _run
        gray.run_trials = logged_run_trials

    def reset(self) -> None:
        self.submitted.clear()
        self.resolved.clear()
        self.first_of_worker.clear()


def start_cluster():
    """Like tests/test_ray_cluster.py's fixture: a head without CPUs, two nodes of 1 CPU."""
    import ray
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False  # stay on loopback, as the test does
    common = dict(node_ip_address="127.0.0.1", object_store_memory=80 * 1024 * 1024)
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False, **common))
    for _ in range(2):
        cluster.add_node(num_cpus=1, **common)
    port = cluster.address.rsplit(":", 1)[1]
    ray.init(address=f"127.0.0.1:{port}", _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    return cluster


def measure(name: str, result, timing: Timing, tasks_log: list[dict]) -> dict:
    trials = {t.number: t for t in result.trials}
    per_trial = {n: timing.resolved[n] - timing.submitted[n] - trials[n].duration for n in trials}
    if name == "ray":
        by_number = {n: entry for entry in tasks_log for n in entry["numbers"]}
        first = {n for n, e in by_number.items() if e["fresh_runner"]}
        parts = {n: dict(to_start=by_number[n]["start"] - timing.submitted[n],
                         body_outside=by_number[n]["end"] - by_number[n]["start"] - trials[n].duration,
                         back=timing.resolved[n] - by_number[n]["end"]) for n in trials}
        pids = sorted({e["pid"] for e in tasks_log})
        fresh_processes = sum(e["fresh_process"] for e in tasks_log)
    else:
        first = set(timing.first_of_worker)
        parts, pids, fresh_processes = {}, [], None
    later = [v for n, v in per_trial.items() if n not in first]
    out = dict(
        executor=name, trials=len(trials), wall=result.duration,
        median_overhead=statistics.median(later), mean_overhead=statistics.mean(later),
        p90_overhead=sorted(later)[int(0.9 * (len(later) - 1))], max_overhead=max(later),
        first_overheads=sorted(per_trial[n] for n in first),
        median_duration=statistics.median(t.duration for t in result.trials),
        load=open("/proc/loadavg").read().strip(),
        per_trial={n: round(v, 4) for n, v in sorted(per_trial.items())},
        first=sorted(first),
    )
    if parts:
        for key in ("to_start", "body_outside", "back"):
            out[f"median_{key}"] = statistics.median(parts[n][key] for n in parts if n not in first)
        out["ray_worker_pids"] = pids
        out["fresh_worker_processes"] = fresh_processes
    executor = timing.executor
    if isinstance(executor, process.ProcessExecutor):  # its own figure: send -> outcome, minus own
        own = sorted(executor.dispatch)
        out["process_dispatch_list_median"] = statistics.median(own)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    settings = dict(strategy="random", max_trials=args.trials, seed=0, epochs=1, steps_per_epoch=4, fuse=1)
    timing = Timing()
    print(f"tiny_grid: {args.trials} trials (fuse=1, 1 epoch of 4 batches of 8); load at start "
          f"{open('/proc/loadavg').read().strip()}", flush=True)
    started = time.time()
    cluster = start_cluster()
    print(f"simulated cluster (head with 0 CPUs + 2 nodes of 1 CPU) up in {time.time() - started:.1f} s", flush=True)
    variants = {"process": dict(workers=2), "ray": dict(executor="ray")}
    names = list(variants)
    runs = []
    try:
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                timing.reset()
                if os.path.exists(TASK_LOG):
                    os.remove(TASK_LOG)
                result = build.search(**settings, **variants[name])
                log = [json.loads(line) for line in open(TASK_LOG)] if os.path.exists(TASK_LOG) else []
                run = measure(name, result, timing, log)
                run["round"] = round_ + 1
                runs.append(run)
                extra = ""
                if name == "ray":
                    extra = (f"  [submit->task start {1000 * run['median_to_start']:.1f} ms, task body outside run_many "
                             f"{1000 * run['median_body_outside']:.1f} ms, task end->result "
                             f"{1000 * run['median_back']:.1f} ms; Ray worker pids {run['ray_worker_pids']}, "
                             f"fresh processes {run['fresh_worker_processes']}]")
                else:
                    extra = f"  [ProcessExecutor.dispatch median {1000 * run['process_dispatch_list_median']:.1f} ms]"
                print(f"round {run['round']} {name:8s} wall {run['wall']:.1f} s  trial median {run['median_duration']:.3f} s  "
                      f"overhead per trial after warm-up: median {1000 * run['median_overhead']:.1f} ms, mean "
                      f"{1000 * run['mean_overhead']:.1f}, p90 {1000 * run['p90_overhead']:.1f}, max "
                      f"{1000 * run['max_overhead']:.1f} ({len(result.trials) - len(run['first'])} trials); "
                      f"first trial per worker (start-up) {[round(x, 2) for x in run['first_overheads']]} s"
                      f"{extra}  load {run['load']}", flush=True)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
        if os.path.exists(TASK_LOG):
            os.remove(TASK_LOG)
    print()
    print("| executor | median overhead per trial, ms (per round) | first trial per worker, s | wall s |")
    print("|---|---|---|---|")
    for name in names:
        mine = [r for r in runs if r["executor"] == name]
        rounds = ", ".join(f"{1000 * r['median_overhead']:.1f}" for r in mine)
        firsts = "; ".join(", ".join(f"{x:.2f}" for x in r["first_overheads"]) for r in mine)
        walls = ", ".join(f"{r['wall']:.1f}" for r in mine)
        print(f"| {name} | {1000 * statistics.median(r['median_overhead'] for r in mine):.1f} ({rounds}) | "
              f"{firsts} | {walls} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(dict(args=vars(args), runs=runs), f, indent=1)


if __name__ == "__main__":
    main()
