"""Where a fused search's time goes, against the same search with ``fuse=1``.

    PYTHONPATH=. python benchmarks/fusion_anatomy.py --workload seed-12 [--fuse auto|1]

One search of a fusion_bench workload in this process (TensorFlow warm first), with a
timing callback (each member gets its own copy; timestamps go to one shared list). Prints,
per group (fused) or per trial (fuse=1): set-up before training starts (data, building
the members), the first epoch (tracing the train and test steps + its steps), the later
epochs (steady state) per step, and what is left after training; and the search's wall.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fusion_bench  # noqa: E402

EVENTS: list[tuple[str, int, float]] = []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", default="seed-12")
    parser.add_argument("--fuse", default="auto")
    parser.add_argument("--strategy", help="e.g. halving (eta 3)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    tf.constant(0.0) + 1.0
    mod = fusion_bench._module(args.workload)
    _, epochs, steps, val_steps, _ = fusion_bench.WORKLOADS[args.workload]
    epochs, steps = args.epochs or epochs, args.steps or steps
    extra = dict(strategy=args.strategy, eta=3) if args.strategy else {}

    class Stamp(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            EVENTS.append(("train_begin", id(self), time.perf_counter()))

        def on_epoch_end(self, epoch, logs=None):
            EVENTS.append(("epoch_end", id(self), time.perf_counter()))

        def on_train_end(self, logs=None):
            EVENTS.append(("train_end", id(self), time.perf_counter()))

    marks: list[tuple[str, float]] = []

    def events(event):
        marks.append((type(event).__name__, time.perf_counter()))

    fuse = args.fuse if args.fuse == "auto" else int(args.fuse)
    t0 = time.perf_counter()
    result = mod.build.search(epochs=epochs, steps_per_epoch=steps, validation_steps=val_steps,
                              callbacks=[Stamp()], fuse=fuse, verbose=events, **extra)
    wall = time.perf_counter() - t0
    # Units: a group (fused) or a trial (fuse=1) spans from the first on_train_begin while no
    # member is training to the on_train_end that leaves none training; its epochs are its
    # first member's.
    units = []  # (train_begin, [epoch ends], train_end)
    active, leader, begin, ends = 0, None, 0.0, []
    for name, who, t in sorted(EVENTS, key=lambda e: e[2]):
        if name == "train_begin":
            if active == 0:
                leader, begin, ends = who, t, []
            active += 1
        elif name == "epoch_end" and who == leader:
            ends.append(t)
        elif name == "train_end":
            active -= 1
            if active == 0:
                units.append((begin, ends, t))
    prev_end = t0
    rows = []
    for begin, ends, end in units:
        first = ends[0] - begin
        later = [(b - a) for a, b in zip(ends, ends[1:])]
        rows.append({"epochs": len(ends), "setup": begin - prev_end, "first_epoch": first,
                     "later_epoch": statistics.median(later) if later else None,
                     "after_last_epoch": end - ends[-1]})
        prev_end = end
    tail = t0 + wall - prev_end
    total = {k: sum(r[k] for r in rows if r[k] is not None) for k in ("setup", "first_epoch", "after_last_epoch")}
    later_total = sum(r["later_epoch"] * (r["epochs"] - 1) for r in rows if r["later_epoch"] is not None)
    print(json.dumps({"workload": args.workload, "fuse": args.fuse, "wall": round(wall, 3), "units": len(rows),
                      "trials": len(result.trials), "setup_total": round(total["setup"], 3),
                      "first_epochs_total": round(total["first_epoch"], 3), "later_epochs_total": round(later_total, 3),
                      "after_training_total": round(total["after_last_epoch"], 3), "tail_after_last_unit": round(tail, 3),
                      "later_epoch_median_s": round(statistics.median([r["later_epoch"] for r in rows if r["later_epoch"] is not None] or [0.0]), 4) if epochs > 1 else None,
                      "per_step_steady_ms_per_unit": round(1000 * statistics.median([r["later_epoch"] for r in rows if r["later_epoch"] is not None] or [0.0]) / steps, 3) if epochs > 1 else None,
                      "load1": os.getloadavg()[0]}))
    for r in rows[:3] if not args.strategy else rows:
        print("  unit:", {k: (round(v, 3) if v is not None else None) for k, v in r.items()})


if __name__ == "__main__":
    main()
