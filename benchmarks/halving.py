"""Successive halving vs the full grid on the "seed-48" workload (docs/performance.md).

    PYTHONPATH=. python benchmarks/halving.py [--epochs 9] [--steps 20] [--val-steps 5] [--eta 3]

Runs the full grid and halving (eta 3: rungs of 1, 3 and 9 epochs) on the same 48
combinations, same data and seed, and prints a Markdown table: epochs spent, wall time,
the rank of halving's winner in the full grid's ranking, and whether the promoted trials'
curves equal the full grid's (continuation from weights must not change results).
Both run with gridspec's defaults (fused, ``fuse="auto"``); ``--fuse1`` adds halving with
``fuse=1`` (Keras ``fit``, one trial at a time) as a third run, ``--rounds N`` repeats
the whole set (the variants in a rotating order) and prints per-round paired ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gridspec as gs  # noqa: E402
from gridspec.strategies.halving import ladder  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from seed_grid import FEATURES, train, val  # noqa: E402,F401  (seed-12's data; found by the module scan)


@gs.grid(lr=[0.001, 0.0005], loss=["mean_squared_error"], act_in=["relu", "swish", "tanh"],
         act_out=["tanh", "sigmoid"], units=[16, 32, 64, 128])
def build(lr, loss, act_in, act_out, units):
    model = keras.Sequential([keras.Input((FEATURES,)),
                              keras.layers.Dense(units, activation=act_in),
                              keras.layers.Dense(32, activation=act_in),
                              keras.layers.Dense(1, activation=act_out)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--val-steps", type=int, default=5)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--fuse1", action="store_true", help="also run halving with fuse=1")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    settings = dict(epochs=args.epochs, steps_per_epoch=args.steps, validation_steps=args.val_steps, seed=0)

    def timed(**extra):
        started = time.perf_counter()
        result = build.search(**settings, **extra)
        return result, time.perf_counter() - started

    variants = {"halving": dict(strategy="halving", eta=args.eta), "full": {}}
    if args.fuse1:
        variants["halving_fuse1"] = dict(strategy="halving", eta=args.eta, fuse=1)
    walls: dict[str, list[float]] = {v: [] for v in variants}
    results = {}
    names = list(variants)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            results[name], wall = timed(**variants[name])
            walls[name].append(wall)
            print(f"round {round_ + 1} {name:14s} wall {wall:.2f} s  load {os.getloadavg()[0]:.2f}", flush=True)
    halved, full = results["halving"], results["full"]
    halving_wall, full_wall = float(np.median(walls["halving"])), float(np.median(walls["full"]))

    ranking = [t.number for t in full.ranked()]
    winner = halved.best
    rank = ranking.index(winner.number) + 1
    same_curves = all(
        np.allclose(t.history["val_loss"], full.trials[t.number - 1].history["val_loss"][: t.epochs], rtol=1e-5)
        for t in halved.trials if t.ok
    )
    budgets = ladder(args.epochs, args.eta)
    rung_sizes = [sum(1 for t in halved.trials if t.epochs >= b) for b in budgets]
    spent_halving = sum(t.epochs for t in halved.trials)
    from_scratch = sum(n * b for n, b in zip(rung_sizes, budgets))
    spent_full = sum(t.epochs for t in full.trials)
    runs_halving = sum(rung_sizes)

    print(f"seed-48: {len(full.trials)} combinations, {args.epochs} epochs x {args.steps} steps, "
          f"{args.val_steps} validation steps, eta {args.eta}, rungs {budgets} with {rung_sizes} trials")
    print()
    print("| variant | fits | epochs trained | share of full grid | wall s | best trial | its rank in the full grid | best val_loss |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| full grid | {len(full.trials)} | {spent_full} | 100 % | {full_wall:.1f} | {full.best.number} | 1 | {full.best_score:.5g} |")
    print(f"| halving, continuing weights | {runs_halving} | {spent_halving} | {100 * spent_halving / spent_full:.1f} % "
          f"| {halving_wall:.1f} | {winner.number} | {rank} | {winner.score:.5g} |")
    print(f"| halving, retraining from scratch (computed) | {runs_halving} | {from_scratch} | "
          f"{100 * from_scratch / spent_full:.1f} % | - | - | - | - |")
    if args.fuse1:
        alone = results["halving_fuse1"]
        alone_wall = float(np.median(walls["halving_fuse1"]))
        print(f"| halving, fuse=1 (Keras fit alone) | {runs_halving} | {sum(t.epochs for t in alone.trials)} | - "
              f"| {alone_wall:.1f} | {alone.best.number} | {ranking.index(alone.best.number) + 1} | {alone.best_score:.5g} |")
        worst = 0.0
        by_number = {t.number: t for t in alone.trials}
        for t in halved.trials:
            u = by_number[t.number]
            for key, values in t.history.items():
                for x, y in zip(values, u.history[key]):
                    if max(abs(x), abs(y)):
                        worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
        print(f"halving default vs halving fuse=1: largest relative history difference {worst:.3g}")
        print(f"halving default / halving fuse=1 per round: "
              f"{[round(a / b, 2) for a, b in zip(walls['halving'], walls['halving_fuse1'])]}")
    print()
    print(f"per round (s): {walls}")
    print(f"halving / full grid per round: {[round(a / b, 2) for a, b in zip(walls['halving'], walls['full'])]}")
    print(f"wall-time ratio halving / full grid (medians): {halving_wall / full_wall:.2f}")
    print(f"promoted trials' val_loss curves equal the full grid's: {same_curves}")
    print(f"full grid's top 3: {ranking[:3]}; halving's finishers: "
          f"{[t.number for t in halved.ranked() if t.status is gs.TrialStatus.COMPLETE]}")


if __name__ == "__main__":
    main()
