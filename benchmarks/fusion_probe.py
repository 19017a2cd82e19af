"""Keras ``fit`` one model at a time vs ``fit_group`` in groups of 1, 4, 12 (48), same data.

    PYTHONPATH=. python benchmarks/fusion_probe.py [--workload seed-12|seed-48|mlp-512]
        [--rounds 3] [--groups 1,4,12]

The models of a workload (docs/performance.md, "The workloads") are trained on batches already in memory
(``from_tensor_slices`` of the materialised generator output), so only the training differs:
``fit`` builds each model after ``keras.utils.set_random_seed(0)``, fits it and clears the
session (``free_memory=False``, as gridspec does); a group variant builds the same models one
after another the same way and trains them with ``fit_group`` in consecutive groups of the
given size, clearing the session after each group. Variants run interleaved, in a rotated
order each round; the table shows medians of wall time and of the process's CPU time (all
threads; steadier than wall time on a shared machine). Every variant must give every model the
``val_loss`` curve ``fit`` gave it: the largest relative difference is printed.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

WORKLOADS = {
    # name: (axes, epochs, steps, validation steps, features, batch size, hidden layers)
    "seed-12": ({"lr": [0.001, 0.0005], "act_in": ["relu", "swish", "tanh"],
                 "act_out": ["tanh", "sigmoid"], "units": [32]}, 3, 50, 10, 16, 64, 2),
    "seed-48": ({"lr": [0.001, 0.0005], "act_in": ["relu", "swish", "tanh"],
                 "act_out": ["tanh", "sigmoid"], "units": [16, 32, 64, 128]}, 1, 20, 5, 16, 64, 2),
    "mlp-512": ({"lr": [0.001, 0.0005], "act_in": ["relu", "swish", "tanh"],
                 "act_out": ["linear", "tanh"], "units": [512]}, 3, 100, 10, 64, 256, 3),
}


def combinations(axes: dict[str, list]) -> list[dict]:
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def make_data(features: int, batch: int, steps: int, val_steps: int):
    import numpy as np
    import tensorflow as tf

    weights = np.random.default_rng(7).normal(size=(features, 1)).astype("float32")

    def batches(seed: int, count: int):
        rng = np.random.default_rng(seed)
        for _ in range(count):
            x = rng.normal(size=(batch, features)).astype("float32")
            noise = rng.normal(size=(batch, 1)).astype("float32")
            yield x, (0.5 + 0.4 * np.tanh(x @ weights / 4 + 0.1 * noise)).astype("float32")

    def dataset(seed: int, count: int):
        xs, ys = zip(*batches(seed, count))
        return tf.data.Dataset.from_tensor_slices((np.stack(xs), np.stack(ys)))

    return dataset(1234, 50).repeat(), dataset(4321, val_steps)


def build(combo: dict, features: int, hidden: int):
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((features,))]
    layers += [keras.layers.Dense(combo["units"], activation=combo["act_in"]) for _ in range(hidden)]
    layers.append(keras.layers.Dense(1, activation=combo["act_out"]))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(combo["lr"]), loss="mean_squared_error")
    return model


def run_fit(combos, data, spec) -> list[list[float]]:
    import keras

    _, epochs, steps, _, features, _, hidden = spec
    train, val = data
    curves = []
    for combo in combos:
        model = build(combo, features, hidden)
        history = model.fit(train, epochs=epochs, steps_per_epoch=steps, validation_data=val,
                            verbose=0, shuffle=False)
        curves.append(history.history["val_loss"])
        del model
        keras.backend.clear_session(free_memory=False)
    return curves


def run_groups(combos, data, spec, size: int) -> list[list[float]]:
    import keras

    from gridspec.training.fused import fit_group

    _, epochs, steps, _, features, _, hidden = spec
    train, val = data
    curves = []
    for start in range(0, len(combos), size):
        models = [build(combo, features, hidden) for combo in combos[start:start + size]]
        outcomes = fit_group(models, train, epochs=epochs, steps_per_epoch=steps,
                             validation_data=val)
        for outcome in outcomes:
            assert outcome.error is None, outcome.error
            curves.append(outcome.history["val_loss"])
        del models, outcomes
        keras.backend.clear_session(free_memory=False)
    return curves


def largest_difference(reference: list[list[float]], curves: list[list[float]]) -> float:
    worst = 0.0
    for ref, got in zip(reference, curves, strict=True):
        for a, b in zip(ref, got, strict=True):
            worst = max(worst, abs(a - b) / max(abs(a), 1e-30))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="seed-12")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", default=None, help="group sizes, e.g. 1,4,12")
    args = parser.parse_args()

    import tensorflow as tf

    spec = WORKLOADS[args.workload]
    axes, epochs, steps, val_steps, features, batch, _ = spec
    combos = combinations(axes)
    default_groups = [1, 4, 12] + ([len(combos)] if len(combos) > 12 else [])
    groups = [int(g) for g in args.groups.split(",")] if args.groups else default_groups
    data = make_data(features, batch, steps, val_steps)
    variants = ["fit"] + [f"group {g}" for g in groups]
    print(f"{args.workload}: {len(combos)} models, {epochs} epochs x {steps} steps, "
          f"{val_steps} validation steps, batch {batch}; TensorFlow {tf.__version__}, "
          f"{args.rounds} interleaved rounds", flush=True)

    walls: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    curves: dict[str, list[list[float]]] = {}
    for round_ in range(args.rounds):
        order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
        for variant in order:
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            if variant == "fit":
                got = run_fit(combos, data, spec)
            else:
                got = run_groups(combos, data, spec, int(variant.split()[1]))
            walls[variant].append(time.perf_counter() - started)
            cpus[variant].append(time.process_time() - cpu)
            curves.setdefault(variant, got)
            print(f"  round {round_ + 1} {variant}: {walls[variant][-1]:.2f} s wall, "
                  f"{cpus[variant][-1]:.2f} s CPU, load {os.getloadavg()[0]:.1f}", flush=True)

    reference = statistics.median(walls["fit"])
    reference_cpu = statistics.median(cpus["fit"])
    print()
    print("| how | wall s | ratio to fit | CPU s | ratio to fit | largest rel. diff of "
          "val_loss vs fit |")
    print("|---|---|---|---|---|---|")
    for variant in variants:
        wall, cpu = statistics.median(walls[variant]), statistics.median(cpus[variant])
        diff = largest_difference(curves["fit"], curves[variant])
        name = "Keras `fit`, one model after another" if variant == "fit" else \
            f"`fit_group`, groups of {variant.split()[1]}"
        print(f"| {name} | {wall:.2f} | {wall / reference:.2f} | {cpu:.2f} | "
              f"{cpu / reference_cpu:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
