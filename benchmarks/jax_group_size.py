"""How large a JAX group should be: seed-48 under ``KERAS_BACKEND=jax`` at several ``fuse``.

    python benchmarks/jax_group_size.py [--sizes 1,12,24,48] [--rounds 2] [--epochs 3] [--steps 20]

Each run is a fresh process (JAX imported and warm before the clock starts) searching the 48
combinations of ``benchmarks/halving.py``'s grid with ``fuse=N``; sizes interleaved round by
round in a rotating order. Prints each run, then the median wall time per size and its
ratio to the fastest. ``JAX_AUTO_GROUP_SIZE`` (gridspec/training/__init__.py) is chosen from it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(fuse: int, epochs: int, steps: int) -> dict:
    import jax.numpy as jnp

    (jnp.zeros(1) + 1.0).block_until_ready()
    sys.path.insert(0, str(HERE))
    from halving import build

    started = time.perf_counter()
    result = build.search(epochs=epochs, steps_per_epoch=steps, validation_steps=5, seed=0, fuse=fuse)
    wall = time.perf_counter() - started
    return {"wall": wall, "trials": len(result.trials), "best_params": result.best_params,
            "best_score": result.best_score, "groups": len({frozenset((t.number, *t.fused_with)) for t in result.trials})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,12,24,48")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.epochs, args.steps), default=str))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    print("load before:", os.getloadavg(), flush=True)
    walls: dict[int, list[float]] = {s: [] for s in sizes}
    for round_ in range(args.rounds):
        order = sizes[round_ % len(sizes):] + sizes[: round_ % len(sizes)]
        for size in order:
            done = subprocess.run([sys.executable, __file__, "--one", str(size), "--epochs", str(args.epochs),
                                   "--steps", str(args.steps)], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"round {round_ + 1} fuse={size}: error {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            run = json.loads(done.stdout.strip().splitlines()[-1])
            walls[size].append(run["wall"])
            print(f"round {round_ + 1} fuse={size:<3d} {json.dumps(run, default=str)}", flush=True)
    print("load after:", os.getloadavg())
    medians = {s: statistics.median(w) for s, w in walls.items() if w}
    fastest = min(medians.values())
    print(f"\n{'fuse':>5s} {'median s':>9s} {'/ fastest':>9s}")
    for size, wall in medians.items():
        print(f"{size:>5d} {wall:9.2f} {wall / fastest:9.2f}")


if __name__ == "__main__":
    main()
