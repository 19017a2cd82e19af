"""Resident memory over a 200-trial search of a tiny model: after trial 20 vs after trial 200.

    python benchmarks/memory.py [--variants loop,gridspec,gridspec_process1,gridspec_jax] [--json out.json]

A variant named ``NAME_jax`` runs ``NAME`` under ``KERAS_BACKEND=jax`` (TensorFlow not imported).

Each variant runs in its own process. The figure is the resident memory (RSS) of the whole
process tree doing the search (the parent plus any worker processes), read from /proc
after each trial; with worker processes, the worker's own RSS is reported too. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARKS = (1, 20, 50, 100, 150, 200)


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out + [g for c in out for g in children(c)]


def tree() -> dict:
    me = os.getpid()
    kids = [c for c in children(me) if "gridspec" in _cmd(c) or "multiprocessing" in _cmd(c)]
    workers = {c: rss_mib(c) for c in kids if rss_mib(c) > 100}  # not the resource tracker
    return {"total": rss_mib(me) + sum(rss_mib(c) for c in kids), "parent": rss_mib(me),
            "workers": sorted(workers.values())}


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def run_loop() -> dict:
    import keras

    import tiny_grid

    marks = {}
    started = time.perf_counter()
    for i, params in enumerate(tiny_grid.build.space, start=1):
        keras.utils.set_random_seed(0)
        model = tiny_grid.build(**params)
        model.fit(tiny_grid.train(), epochs=1, steps_per_epoch=2, verbose=0)
        keras.backend.clear_session()
        if i in MARKS:
            marks[i] = tree()
    return {"marks": marks, "wall": time.perf_counter() - started}


def run_gridspec(**settings) -> dict:
    import tiny_grid

    marks = {}

    def events(event):
        if type(event).__name__ == "TrialFinished" and event.position in MARKS:
            marks[event.position] = tree()

    started = time.perf_counter()
    tiny_grid.build.search(epochs=1, steps_per_epoch=2, verbose=events, **settings)
    return {"marks": marks, "wall": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="loop,gridspec,gridspec_process1")
    parser.add_argument("--json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import tensorflow as tf

            tf.constant(0.0) + 1.0
        run = {"loop": run_loop, "gridspec": run_gridspec,
               "gridspec_process1": lambda: run_gridspec(executor="process")}[args.one]
        print(json.dumps(run()))
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    results = {}
    for variant in args.variants.split(","):
        name, jax = (variant[:-4], True) if variant.endswith("_jax") else (variant, False)
        done = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True,
                              env={**env, "KERAS_BACKEND": "jax"} if jax else env)
        if done.returncode != 0:
            results[variant] = {"error": done.stderr.strip()[-500:]}
            print(variant, "error", results[variant]["error"], flush=True)
            continue
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        marks = results[variant]["marks"]
        at20, at200 = marks["20"]["total"], marks["200"]["total"]
        peak = max(m["total"] for k, m in marks.items() if int(k) >= 20)
        results[variant]["growth_20_to_200"] = at200 / at20 - 1
        print(f"{variant:18s} after 20: {at20:7.1f} MiB  after 200: {at200:7.1f} MiB  "
              f"growth {100 * (at200 / at20 - 1):+.1f} %  (peak after 20: {peak:.1f} MiB; "
              f"per mark: {[round(m['total']) for m in marks.values()]}; workers at 200: "
              f"{[round(w) for w in marks['200']['workers']]})  wall {results[variant]['wall']:.0f} s",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
