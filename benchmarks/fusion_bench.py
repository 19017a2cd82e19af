"""Fused trials end to end: the seed article's loop vs gridspec (default, fused) vs
gridspec ``fuse=1`` (Keras ``fit``, one trial at a time) vs KerasTuner, on seed-12, seed-48
and mlp-512 (the workloads are described in docs/performance.md).

    PYTHONPATH=. python benchmarks/fusion_bench.py --rounds 2 [--workloads seed-12,seed-48,mlp-512]
        [--json benchmarks/results/fusion_bench.json]

Every run is a fresh Python process (TensorFlow imported and warm before the clock starts),
the variants interleaved round by round in a rotating order, workloads one after another
within a round. Prints one line per run, then per workload and variant the median wall time,
the ratio of medians and the paired ratio (median over rounds of variant / the loop in the
same round), and the equivalence of fused and ``fuse=1`` histories: the largest relative
difference over every trial, every history key, every epoch (same round).

The fused variant carries no fit-timer callback: with fusion every member's
``on_train_begin``/``on_train_end`` spans the whole group. ``fuse=1`` and the loop carry one
(time outside ``fit`` per trial).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# workload: (module with the grid and its data, epochs, steps, validation steps, variants)
WORKLOADS = {
    "seed-12": ("seed_grid", 3, 50, 10, ("loop", "gridspec", "gridspec_fuse1", "kerastuner")),
    "seed-48": ("seed48_grid", 1, 20, 5, ("loop", "gridspec", "gridspec_fuse1")),
    "mlp-512": ("mlp512_grid", 3, 100, 10, ("loop", "gridspec", "gridspec_fuse1")),
}


def _module(workload: str):
    import importlib

    sys.path.insert(0, str(ROOT / "examples"))
    return importlib.import_module(WORKLOADS[workload][0])


def _datasets(mod):
    """The seed article's pipeline: endless generators through ``tf.data.Dataset.from_generator``."""
    import tensorflow as tf

    def endless(factory):
        def gen():
            while True:
                yield from factory()
        return gen

    features = mod.FEATURES
    sig = (tf.TensorSpec((None, features), tf.float32), tf.TensorSpec((None, 1), tf.float32))
    return (tf.data.Dataset.from_generator(endless(mod.train), output_signature=sig),
            tf.data.Dataset.from_generator(endless(mod.val), output_signature=sig))


def run_loop(workload: str) -> dict:
    import keras

    import workload as w

    mod = _module(workload)
    _, epochs, steps, val_steps, _ = WORKLOADS[workload]
    train, val = _datasets(mod)
    timer = w.fit_timer()
    started = time.perf_counter()
    best = None
    n = 0
    for params in mod.build.space:
        keras.utils.set_random_seed(0)
        model = mod.build.fn(**params)
        history = model.fit(train, epochs=epochs, steps_per_epoch=steps, validation_data=val,
                            validation_steps=val_steps, verbose=0, callbacks=[timer()])
        score = min(history.history["val_loss"])
        if best is None or score < best[0]:
            best = (score, dict(params))
        keras.backend.clear_session()
        n += 1
    wall = time.perf_counter() - started
    return {"wall": wall, "fit": timer.total, "trials": n, "best_score": best[0], "best_params": best[1]}


def run_gridspec(workload: str, **settings) -> dict:
    import workload as w

    mod = _module(workload)
    _, epochs, steps, val_steps, _ = WORKLOADS[workload]
    timer = None
    if settings.get("fuse") == 1:
        timer = w.fit_timer()
        settings["callbacks"] = [timer()]
    started = time.perf_counter()
    result = mod.build.search(epochs=epochs, steps_per_epoch=steps, validation_steps=val_steps, **settings)
    wall = time.perf_counter() - started
    out = {"wall": wall, "trials": len(result.trials), "best_score": result.best_score,
           "best_params": result.best_params,
           "trial_seconds": statistics.median(t.duration for t in result.trials),
           "groups": len({tuple(sorted({t.number, *t.fused_with})) for t in result.trials}),
           "histories": {json.dumps(dict(t.params), sort_keys=True): {k: list(v) for k, v in t.history.items()}
                         for t in result.trials}}
    if timer is not None:
        out["fit"] = timer.total
    return out


def run_kerastuner(workload: str) -> dict:
    import tempfile

    import keras
    import keras_tuner as kt

    mod = _module(workload)
    _, epochs, steps, val_steps, _ = WORKLOADS[workload]
    import workload as w

    axes = {axis.name: list(axis.values) for axis in mod.build.space.axes}

    def build(hp):
        params = {name: hp.Choice(name, values) for name, values in axes.items()}
        keras.utils.set_random_seed(0)
        return mod.build.fn(**params)

    train, val = _datasets(mod)
    timer = w.fit_timer()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        tuner = kt.GridSearch(build, objective="val_loss", directory=tmp, project_name="b", overwrite=True)
        tuner.search(train, epochs=epochs, steps_per_epoch=steps, validation_data=val,
                     validation_steps=val_steps, verbose=0, callbacks=[timer()])
        wall = time.perf_counter() - started
        best = tuner.oracle.get_best_trials(1)[0]
    return {"wall": wall, "fit": timer.total, "trials": len(tuner.oracle.trials),
            "best_score": best.score, "best_params": best.hyperparameters.values}


def run_variant(workload: str, name: str) -> dict:
    import tensorflow as tf  # warm before the clock starts, like a notebook

    tf.constant(0.0) + 1.0
    if name == "loop":
        return run_loop(workload)
    if name == "gridspec":
        return run_gridspec(workload)
    if name == "gridspec_fuse1":
        return run_gridspec(workload, fuse=1)
    if name == "kerastuner":
        return run_kerastuner(workload)
    raise SystemExit(f"unknown variant {name}")


# -- the driver ----------------------------------------------------------------------------------
def _env() -> dict:
    paths = [str(HERE), str(ROOT), str(ROOT / "examples")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]),
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def spawn(workload: str, variant: str) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", workload, variant],
                          capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def max_rel_diff(a: dict, b: dict) -> float:
    """Largest |a - b| / max(|a|, |b|) over every trial, key and epoch; inf if the keys differ."""
    worst = 0.0
    if set(a) != set(b):
        return float("inf")
    for params, ha in a.items():
        hb = b[params]
        if set(ha) != set(hb):
            return float("inf")
        for key, va in ha.items():
            vb = hb[key]
            if len(va) != len(vb):
                return float("inf")
            for x, y in zip(va, vb):
                scale = max(abs(x), abs(y))
                if scale:
                    worst = max(worst, abs(x - y) / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--variants", help="restrict to these variants (comma-separated)")
    parser.add_argument("--json")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_variant(*args.one), default=str))
        return
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()}
    print("machine:", machine, flush=True)
    workloads = args.workloads.split(",")
    runs = {wl: {v: [] for v in WORKLOADS[wl][4] if not args.variants or v in args.variants.split(",")}
            for wl in workloads}
    equivalence: dict[str, list[float]] = {wl: [] for wl in workloads}
    for round_ in range(args.rounds):
        for wl in workloads:
            variants = list(runs[wl])
            order = variants[round_ % len(variants):] + variants[: round_ % len(variants)]
            for variant in order:
                run = spawn(wl, variant)
                run["load1"] = os.getloadavg()[0]
                runs[wl][variant].append(run)
                shown = {k: v for k, v in run.items() if k != "histories"}
                print(f"round {round_ + 1} {wl} {variant:15s} " + json.dumps(shown, default=str), flush=True)
            fused, alone = runs[wl].get("gridspec", []), runs[wl].get("gridspec_fuse1", [])
            if len(fused) > round_ and len(alone) > round_ and "histories" in fused[round_] and "histories" in alone[round_]:
                d = max_rel_diff(fused[round_]["histories"], alone[round_]["histories"])
                equivalence[wl].append(d)
                print(f"round {round_ + 1} {wl} equivalence max_rel_diff {d:.3g}", flush=True)
    machine["load_after"] = os.getloadavg()
    summary = {wl: summarise(runs[wl]) for wl in workloads}
    for wl in workloads:
        print(f"\n== {wl}  (equivalence fused vs fuse=1, max rel diff per round: {equivalence[wl]})")
        print_table(summary[wl])
    print("machine:", machine)
    if args.json:
        slim = {wl: {v: [{k: x for k, x in r.items() if k != "histories"} for r in rs] for v, rs in vs.items()}
                for wl, vs in runs.items()}
        Path(args.json).write_text(json.dumps({"machine": machine, "runs": slim, "summary": summary,
                                               "equivalence": equivalence}, indent=1, default=str))


def summarise(runs: dict[str, list[dict]]) -> dict:
    summary: dict[str, dict] = {}
    loop = runs.get("loop", [])
    base = statistics.median(r["wall"] for r in loop if "wall" in r) if any("wall" in r for r in loop) else None
    for variant, results in runs.items():
        ok = [r for r in results if "wall" in r]
        if not ok:
            summary[variant] = {"error": results[0].get("error") if results else "not run"}
            continue
        wall = statistics.median(r["wall"] for r in ok)
        paired = [r["wall"] / b["wall"] for r, b in zip(results, loop) if "wall" in r and "wall" in b]
        row = {"wall": wall, "per_round": [round(r["wall"], 2) for r in ok], "ratio": wall / base if base else None,
               "paired_ratio": statistics.median(paired) if paired else None, "paired": paired,
               "best_params": ok[0]["best_params"], "best_score": ok[0]["best_score"]}
        if all("fit" in r for r in ok):
            row["outside_fit_per_trial"] = statistics.median((r["wall"] - r["fit"]) / r["trials"] for r in ok)
        if "groups" in ok[0]:
            row["groups"] = ok[0]["groups"]
        summary[variant] = row
    for name, other in (("gridspec/kerastuner", "kerastuner"), ("gridspec/fuse1", "gridspec_fuse1")):
        a, b = runs.get("gridspec", []), runs.get(other, [])
        pairs = [x["wall"] / y["wall"] for x, y in zip(a, b) if "wall" in x and "wall" in y]
        if pairs:
            summary[name] = {"paired": pairs, "paired_median": statistics.median(pairs)}
    return summary


def print_table(summary: dict) -> None:
    print(f"{'variant':16s} {'wall s':>8s} {'ratio':>6s} {'paired':>7s} {'outside fit s/trial':>20s}  per round / best")
    for variant, row in summary.items():
        if "/" in variant:
            print(f"{variant:16s} paired {row['paired_median']:.2f} (per round {[round(p, 2) for p in row['paired']]})")
            continue
        if "error" in row:
            print(f"{variant:16s} error: {row['error']}")
            continue
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        paired = f"{row['paired_ratio']:.2f}" if row.get("paired_ratio") else "-"
        outside = f"{row['outside_fit_per_trial']:.3f}" if "outside_fit_per_trial" in row else "-"
        print(f"{variant:16s} {row['wall']:8.1f} {ratio:>6s} {paired:>7s} {outside:>20s}  {row['per_round']} "
              f"groups={row.get('groups', '-')} {row['best_params']} {row['best_score']:.6f}")


if __name__ == "__main__":
    main()
