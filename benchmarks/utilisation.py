"""Worker utilisation of grid, halving and ASHA with ``workers=2`` on the seed-48 workload.

    PYTHONPATH=. python benchmarks/utilisation.py [--epochs 9] [--steps 20] [--val-steps 5] [--rounds 2]
        [--strategies grid,halving,asha] [--fuse auto,1] [--json benchmarks/results/utilisation.json]

Each variant (strategy x ``fuse``) is one ``search(workers=2)`` in this process, interleaved
over ``--rounds`` in a rotating order. Per run it records, from the search's own process:

- **busy**: the sum of ``Trial.duration`` over the result's trials. A trial's ``duration`` is
  the time its worker spent inside ``TrialRunner.run_many`` for it (a fused group's time is
  shared equally among its members, so the members add up to the group's time), and a trial
  continued by halving/ASHA carries the seconds of its earlier rungs, so the sum counts each
  run of each rung once. It is time spent training (building, tracing, fitting, scoring,
  checkpointing), not the worker's start-up (importing TensorFlow and the user's module) nor
  the pipe between the processes.
- **busy (parent's view)**: the sum over groups of the time from sending the group to a
  worker to its outcome coming back (``ProcessExecutor._run``), i.e. busy plus dispatch.
- **wall** from ``search()``'s start to its return, and from the first worker reporting ready
  (TensorFlow imported, module loaded) to the last outcome.
- **utilisation** = busy / (workers x wall), for both walls.

and a per-worker timeline (each group: worker pid, start, end, members, budget) so the idle
time can be attributed: the start-up before the first group, gaps between groups, and the
tail where one worker waits while the other trains the last groups.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from halving import build, train, val  # noqa: E402,F401  (seed-48: the grid and its data)

import gridspec.engine as engine  # noqa: E402
from gridspec.executors import process  # noqa: E402

WORKERS = 2


class Probe:
    """Timestamps from inside the executor (benchmark-only wrappers around private methods)."""

    def __init__(self) -> None:
        self.reset()
        original_run = process.ProcessExecutor._run
        original_ready = process._Worker.wait_ready
        original_init = process._Worker.__init__
        probe = self

        def _run(executor, worker, tasks, futures):
            started = time.perf_counter()
            kind = original_run(executor, worker, tasks, futures)
            ended = time.perf_counter()
            trials = [f.result() for f in futures if f.done() and f.exception() is None]
            probe.groups.append(dict(
                pid=worker.pid, slot=worker.env.get("GRIDSPEC_WORKER"), start=started, end=ended, size=len(tasks),
                budgets=sorted({(t.start_epoch, t.epochs) for t in tasks}),
                numbers=[t.number for t in tasks],
                own=0.0, durations=[(tr.number, tr.duration) for tr in trials],
            ))
            return kind

        def wait_ready(worker):
            was = worker.ready
            original_ready(worker)
            if not was and worker.ready:
                probe.ready.append((time.perf_counter(), worker.pid))

        def init(worker, *args, **kwargs):
            probe.spawned.append(time.perf_counter())
            original_init(worker, *args, **kwargs)

        process.ProcessExecutor._run = _run
        process._Worker.wait_ready = wait_ready
        process._Worker.__init__ = init

    def reset(self) -> None:
        self.groups: list[dict] = []
        self.ready: list[tuple[float, int]] = []
        self.spawned: list[float] = []


def profile(intervals: list[tuple[float, float]], start: float, end: float) -> dict:
    """Seconds of [start, end] with two or more, exactly one, and no group in flight; and the
    tail: from the last moment two groups were in flight to ``end`` (at most one busy)."""
    events = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals])
    out = {"two": 0.0, "one": 0.0, "none": 0.0}
    level, at, last_two = 0, start, start
    for when, step in events + [(end, 0)]:
        when = min(max(when, start), end)
        key = "two" if level >= 2 else "one" if level == 1 else "none"
        out[key] += when - at
        if level >= 2:
            last_two = when
        level += step
        at = when
    out["tail"] = end - last_two
    return out


def summarise(name: str, result, probe: Probe, t0: float, t1: float) -> dict:
    trials = result.trials
    busy = sum(t.duration for t in trials)
    # each group's own time: members' durations minus what they carried from earlier rungs
    seen: dict[int, float] = {}
    for g in sorted(probe.groups, key=lambda g: g["end"]):
        own = 0.0
        for number, duration in g.pop("durations", []):
            own += duration - seen.get(number, 0.0)
            seen[number] = duration
        g["own"] = own
    parent_busy = sum(g["end"] - g["start"] for g in probe.groups)
    first_ready = min(r[0] for r in probe.ready)
    last_out = max(g["end"] for g in probe.groups)
    wall = t1 - t0
    window = last_out - first_ready
    busy_profile = profile([(g["start"], g["end"]) for g in probe.groups], first_ready, last_out)
    tail, gaps = busy_profile["tail"], busy_profile["one"] + busy_profile["none"] - busy_profile["tail"]
    winner = result.best
    return dict(
        variant=name, wall=wall, busy=busy, parent_busy=parent_busy,
        util_search=busy / (WORKERS * wall), util_ready=busy / (WORKERS * window),
        util_parent_ready=parent_busy / (WORKERS * window),
        first_ready_after=first_ready - t0, both_ready_after=max(r[0] for r in probe.ready[:WORKERS]) - t0,
        last_outcome_to_return=t1 - last_out, window=window,
        tail=tail, gaps=gaps, profile=busy_profile, groups=len(probe.groups), workers_started=len(probe.spawned),
        group_sizes=[g["size"] for g in sorted(probe.groups, key=lambda g: g["start"])],
        epochs=sum(t.epochs for t in trials), fits=len(probe.groups) and sum(g["size"] for g in probe.groups),
        winner=winner.number, winner_score=winner.score,
        load=os.getloadavg()[0],
        timeline=[dict(pid=g["pid"], slot=g["slot"], start=round(g["start"] - t0, 3), end=round(g["end"] - t0, 3),
                       size=g["size"], own=round(g["own"], 3), budgets=g["budgets"], numbers=g["numbers"])
                  for g in sorted(probe.groups, key=lambda g: g["start"])],
        ready=[round(r[0] - t0, 3) for r in probe.ready],
    )


def report(runs: list[dict], names: list[str]) -> None:
    """The Markdown tables: medians over rounds, paired ratios, and where the idle time went."""
    med = statistics.median

    def each(values):
        return ", ".join(f"{x:.2f}" for x in values)

    print()
    print("| variant | wall s (median) | wall / full grid's (paired, per round) | busy s | "
          "utilisation from search() start | from first worker ready | epochs | winner |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        grid = f"grid fuse={name.split('fuse=')[1]}"
        if grid not in names and grid.endswith(" norecycle") and grid.replace(" norecycle", "") in names:
            grid = grid.replace(" norecycle", "")
        if grid not in names:
            grid = "grid fuse=auto"
        ratios = [r["wall"] / g["wall"] for r in mine for g in runs if g["variant"] == grid and g["round"] == r["round"]]
        print(f"| {name} | {med(r['wall'] for r in mine):.1f} | {med(ratios):.2f} ({each(ratios)}) "
              f"| {med(r['busy'] for r in mine):.1f} | {med(r['util_search'] for r in mine):.2f} "
              f"({each(r['util_search'] for r in mine)}) | {med(r['util_ready'] for r in mine):.2f} "
              f"({each(r['util_ready'] for r in mine)}) | {mine[0]['epochs']} | "
              f"{', '.join(str(r['winner']) for r in mine)} |")
    print()
    print("Where the time between search() start and its return went (medians over rounds, seconds):")
    print()
    print("| variant | until the first worker is ready | both workers busy | one busy, one idle | "
          "of which the tail | none busy | last outcome to return | workers started | groups (sizes, first round) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        sizes = mine[0]["group_sizes"]
        shown = str(sizes) if len(sizes) <= 16 else ", ".join(
            f"{sizes.count(k)} x {k}" for k in sorted(set(sizes), reverse=True))
        print(f"| {name} | {med(r['first_ready_after'] for r in mine):.1f} | {med(r['profile']['two'] for r in mine):.1f} "
              f"| {med(r['profile']['one'] for r in mine):.1f} | {med(r['profile']['tail'] for r in mine):.1f} "
              f"| {med(r['profile']['none'] for r in mine):.1f} | {med(r['last_outcome_to_return'] for r in mine):.1f} "
              f"| {', '.join(str(r['workers_started']) for r in mine)} | {shown} |")


def from_json(path: str) -> None:
    """Re-summarise a saved run (the profile is recomputed from each run's timeline)."""
    data = json.load(open(path, encoding="utf-8"))
    runs = data["runs"]
    for r in runs:
        spans = [(g["start"], g["end"]) for g in r["timeline"]]
        r["profile"] = profile(spans, min(r["ready"]), max(b for a, b in spans))
    names = list(dict.fromkeys(r["variant"] for r in runs if r["round"] == 1))
    names.sort(key=lambda n: (n.split(" fuse=")[1] != "auto", n.split(" fuse=")[1],
                              ["grid", "halving", "asha"].index(n.split()[0])))
    report(runs, names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--val-steps", type=int, default=5)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--strategies", default="grid,halving,asha")
    parser.add_argument("--fuse", default="auto,1")
    parser.add_argument("--extra", default="",
                        help="more strategy:fuse[:norecycle] variants, e.g. asha:4,asha:auto:norecycle "
                             "(norecycle: worker processes are never retired for memory growth, "
                             "by setting gridspec.executors.process.RECYCLE_GROWTH out of reach)")
    parser.add_argument("--json")
    parser.add_argument("--from-json", help="only re-summarise a saved --json file")
    args = parser.parse_args()
    if args.from_json:
        from_json(args.from_json)
        return
    settings = dict(epochs=args.epochs, steps_per_epoch=args.steps, validation_steps=args.val_steps,
                    seed=0, workers=WORKERS)
    variants = {}
    for fuse in args.fuse.split(","):
        for strategy in args.strategies.split(","):
            extra = {} if strategy == "grid" else dict(strategy=strategy, eta=args.eta)
            if fuse != "auto":
                extra["fuse"] = int(fuse)
            variants[f"{strategy} fuse={fuse}"] = extra
    for item in filter(None, args.extra.split(",")):
        strategy, fuse, *flags = item.split(":")
        extra = {} if strategy == "grid" else dict(strategy=strategy, eta=args.eta)
        if fuse != "auto":
            extra["fuse"] = int(fuse)
        if flags == ["norecycle"]:
            extra["norecycle"] = True
        variants[f"{strategy} fuse={fuse}{' norecycle' if flags else ''}"] = extra
    growth = process.RECYCLE_GROWTH
    probe = Probe()
    runs: list[dict] = []
    names = list(variants)
    print(f"seed-48, {args.epochs} epochs x {args.steps} steps, {args.val_steps} validation steps, "
          f"workers={WORKERS}; load at start {open('/proc/loadavg').read().strip()}", flush=True)
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            probe.reset()
            load_before = open("/proc/loadavg").read().strip()
            t0 = time.perf_counter()
            options = dict(variants[name])
            process.RECYCLE_GROWTH = 1e9 if options.pop("norecycle", False) else growth
            result = build.search(**settings, **options)
            t1 = time.perf_counter()
            run = summarise(name, result, probe, t0, t1)
            run.update(round=round_ + 1, loadavg_before=load_before, loadavg_after=open("/proc/loadavg").read().strip())
            runs.append(run)
            print(f"round {run['round']} {name:16s} wall {run['wall']:6.1f} s  busy {run['busy']:6.1f} s  "
                  f"util(search) {run['util_search']:.2f}  util(from ready) {run['util_ready']:.2f}  "
                  f"parent-view util(from ready) {run['util_parent_ready']:.2f}  first ready +{run['first_ready_after']:.1f} s  "
                  f"both +{run['both_ready_after']:.1f} s  tail {run['tail']:.1f} s  gaps {run['gaps']:.1f} s  "
                  f"groups {run['groups']} {run['group_sizes']}  workers started {run['workers_started']}  "
                  f"epochs {run['epochs']}  winner {run['winner']}  load {run['loadavg_before']}", flush=True)

    report(runs, names)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(dict(args=vars(args), runs=runs), f, indent=1)


if __name__ == "__main__":
    main()
