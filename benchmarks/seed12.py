"""Seed-12 side by side: gridspec vs the seed article's hand-written loop vs KerasTuner vs Talos.

    python benchmarks/seed12.py --rounds 3 [--variants loop,gridspec,...] [--json out.json]

A variant named ``NAME_jax`` runs ``NAME`` under ``KERAS_BACKEND=jax`` (``loop_jax``,
``gridspec_jax``, ``gridspec_fuse1_jax``): ``--variants loop,loop_jax,gridspec,gridspec_jax,gridspec_fuse1_jax``
is the JAX comparison of docs/performance.md. ``onejit_jax`` is a JAX group written by hand
(one ``jax.jit`` over the 12 members' steps and nothing else): the floor under ``gridspec_jax``.

Every variant runs in a fresh Python process (TensorFlow imported and warm before the clock
starts, except for worker processes, whose start-up is part of their search), the variants
interleaved round by round in a rotating order. Prints one line per run, then per variant
the median search wall time, its ratio to the seed article's loop, time outside ``fit`` per trial,
and the best params and score (every variant must agree). Talos pins pandas<3, so it is
loaded from a separate folder: ``TALOS_SITE=/path/from/pip-install--target``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = ("loop", "loop_noclear", "gridspec", "gridspec_workers2", "gridspec_process1", "kerastuner", "talos")
JAX_SUFFIX = "_jax"  # the same variant under KERAS_BACKEND=jax


# -- the variants, each run inside its own process ---------------------------------------------
def run_loop(clear: bool) -> dict:
    import keras

    import workload as w

    train, val = w.datasets()
    timer = w.fit_timer()
    started = time.perf_counter()
    best = None
    for params in w.combinations():
        model = w.build(**params)
        history = model.fit(train, epochs=w.EPOCHS, steps_per_epoch=w.STEPS, validation_data=val,
                            validation_steps=w.VAL_STEPS, verbose=0, callbacks=[timer()])
        score = min(history.history["val_loss"])
        if best is None or score < best[0]:
            best = (score, params)
        if clear:
            keras.backend.clear_session()
    wall = time.perf_counter() - started
    return {"wall": wall, "fit": timer.total, "trials": 12, "best_score": best[0], "best_params": best[1]}


def run_gridspec(**settings) -> dict:
    import workload as w

    timer = w.fit_timer()
    if settings.get("workers", 1) == 1 and "executor" not in settings:
        settings["callbacks"] = [timer()]
    starts: dict[int, float] = {}
    overhead: list[float] = []

    def events(event):
        name = type(event).__name__
        if name == "TrialStarted":
            starts[event.number] = time.perf_counter()
        elif name == "TrialFinished":
            overhead.append(time.perf_counter() - starts[event.trial.number] - event.trial.duration)

    started = time.perf_counter()
    result = w.seed_grid.build.search(epochs=w.EPOCHS, steps_per_epoch=w.STEPS,
                                      validation_steps=w.VAL_STEPS, verbose=events, **settings)
    wall = time.perf_counter() - started
    out = {"wall": wall, "trials": len(result.trials), "best_score": result.best_score,
           "best_params": result.best_params,
           "trial_seconds": statistics.median(t.duration for t in result.trials)}
    if "callbacks" in settings:
        out["fit"] = timer.total
    else:  # seconds between the parent handing a trial out and getting it back, beyond the trial
        out["dispatch_median"] = statistics.median(sorted(overhead)[: max(1, len(overhead) - settings.get("workers", 1))])
    return out


def run_onejit() -> dict:
    """What a JAX group does, by hand and nothing else: the 12 models built as alone, one
    ``jax.jit`` over their ``train_step`` s and one over their ``test_step`` s, the batches on
    the device once, each member's state written back into its variables at each epoch's end
    (as ``fit`` does); the evaluation program compiles on a thread while the training program
    is traced and compiled, as gridspec overlaps them. No callbacks, no history objects, no
    journal: the floor under gridspec's JAX group on this workload. Its histories equal
    ``fit``'s, so its best score must equal every other variant's."""
    import itertools
    import threading

    import jax
    import keras

    import workload as w

    train_names = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")
    test_names = ("trainable_variables", "non_trainable_variables", "metrics_variables")
    started = time.perf_counter()
    train = [jax.device_put(b) for b in itertools.islice(w.seed_grid.train(), w.STEPS)]
    val = [jax.device_put(b) for b in itertools.islice(w.seed_grid.val(), w.VAL_STEPS)]
    combos = list(w.combinations())
    models = [w.build(**params) for params in combos]
    for model in models:
        model._symbolic_build(data_batch=train[0])

    def group(method):
        steps = [getattr(model, method) for model in models]

        def step(states, data):
            out = [one(state, data) for one, state in zip(steps, states)]
            return [o[0] for o in out], tuple(o[1] for o in out)
        return jax.jit(step, donate_argnums=0)

    def run_epoch(program, batches, names):
        for model in models:
            for metric in model.metrics:
                metric.reset_state()
        states = tuple(m._get_jax_state(**{n: True for n in names}, purge_model_variables=True) for m in models)
        for batch in batches:
            logs, states = program(states, batch)
        for model, state in zip(models, states):
            variables = {"trainable_variables": model.trainable_variables,
                         "non_trainable_variables": model.non_trainable_variables,
                         "optimizer_variables": model.optimizer.variables,
                         "metrics_variables": model.metrics_variables}
            for name, values in zip(names, state):
                for variable, value in zip(variables[name], values):
                    variable.assign(value)
        return logs

    train_step, test_step = group("train_step"), group("test_step")
    states = tuple(m._get_jax_state(**{n: True for n in test_names}) for m in models)
    lowered = test_step.lower(states, val[0])  # compiled for the calls' types: jit's cache keeps it
    ahead = threading.Thread(target=lowered.compile)
    ahead.start()
    states = tuple(m._get_jax_state(**{n: True for n in train_names}) for m in models)
    train_step.lower(states, train[0]).compile()
    ahead.join()
    curves: list[list[float]] = [[] for _ in models]
    for _ in range(w.EPOCHS):
        run_epoch(train_step, train, train_names)
        for curve, logs in zip(curves, run_epoch(test_step, val, test_names)):
            curve.append(float(logs["loss"]))
    wall = time.perf_counter() - started
    best = min(range(len(models)), key=lambda i: min(curves[i]))
    return {"wall": wall, "trials": len(models), "best_score": min(curves[best]), "best_params": combos[best]}


def run_kerastuner() -> dict:
    import keras_tuner as kt

    import workload as w

    def build(hp):
        return w.build(**{name: hp.Choice(name, values) for name, values in w.AXES.items()})

    train, val = w.datasets()
    timer = w.fit_timer()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        tuner = kt.GridSearch(build, objective="val_loss", directory=tmp, project_name="seed12", overwrite=True)
        tuner.search(train, epochs=w.EPOCHS, steps_per_epoch=w.STEPS, validation_data=val,
                     validation_steps=w.VAL_STEPS, verbose=0, callbacks=[timer()])
        wall = time.perf_counter() - started
        best = tuner.oracle.get_best_trials(1)[0]
    return {"wall": wall, "fit": timer.total, "trials": len(tuner.oracle.trials),
            "best_score": best.score, "best_params": best.hyperparameters.values}


def run_talos() -> dict:
    import numpy as np
    import talos

    import workload as w

    train, val = w.datasets()
    timer = w.fit_timer()
    scores: list[tuple[float, dict]] = []

    def model(x_train, y_train, x_val, y_val, params):
        model = w.build(**{k: params[k] for k in w.AXES})
        history = model.fit(train, epochs=w.EPOCHS, steps_per_epoch=w.STEPS, validation_data=val,
                            validation_steps=w.VAL_STEPS, verbose=0, callbacks=[timer()])
        scores.append((min(history.history["val_loss"]), {k: params[k] for k in w.AXES}))
        return history, model

    x = np.zeros((64, 16), "float32")  # Talos wants arrays; the model trains on the datasets
    y = np.zeros((64, 1), "float32")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        started = time.perf_counter()
        talos.Scan(x=x, y=y, params=dict(w.AXES), model=model, experiment_name="seed12",
                   x_val=x, y_val=y, print_params=False, disable_progress_bar=True, save_weights=False)
        wall = time.perf_counter() - started
    best = min(scores, key=lambda s: s[0])
    return {"wall": wall, "fit": timer.total, "trials": len(scores), "best_score": best[0], "best_params": best[1]}


def run_variant(name: str) -> dict:
    import tensorflow as tf  # warm before the clock starts, like a notebook

    tf.constant(0.0) + 1.0
    if name.endswith(JAX_SUFFIX):
        import jax.numpy as jnp

        (jnp.zeros(1) + 1.0).block_until_ready()
        name = name[: -len(JAX_SUFFIX)]
    if name == "onejit":
        return run_onejit()
    if name == "gridspec_fuse1":
        return run_gridspec(fuse=1)
    if name == "loop":
        return run_loop(clear=True)
    if name == "loop_noclear":
        return run_loop(clear=False)
    if name == "gridspec":
        return run_gridspec()
    if name == "gridspec_workers2":
        return run_gridspec(workers=2)
    if name == "gridspec_process1":
        return run_gridspec(executor="process")
    if name == "kerastuner":
        return run_kerastuner()
    if name == "talos":
        return run_talos()
    raise SystemExit(f"unknown variant {name}")


# -- the driver ----------------------------------------------------------------------------------
def versions() -> dict:
    code = ("import json, tensorflow as tf, keras; v = {'tensorflow': tf.__version__, 'keras': keras.__version__}\n"
            "try:\n import keras_tuner; v['keras-tuner'] = keras_tuner.__version__\nexcept ImportError: pass\n"
            "print(json.dumps(v))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env("kerastuner"))
    found = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}
    if os.environ.get("TALOS_SITE"):
        out = subprocess.run([sys.executable, "-c", "import talos; print(talos.__version__)"],
                             capture_output=True, text=True, env=_env("talos"))
        if out.returncode == 0:
            found["talos"] = out.stdout.strip().splitlines()[-1]
    return found


def _env(variant: str) -> dict:
    paths = [str(HERE), str(ROOT)]
    if variant == "talos" and os.environ.get("TALOS_SITE"):
        paths.append(os.environ["TALOS_SITE"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    if variant.endswith(JAX_SUFFIX):
        env["KERAS_BACKEND"] = "jax"
    return env


def spawn(variant: str) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", variant],
                          capture_output=True, text=True, env=_env(variant))
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", help="write every run and the summary here")
    parser.add_argument("--from-log", metavar="TXT", help="summarise the run lines of an earlier run's output")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_variant(args.one), default=str))
        return
    if args.from_log:
        logged: dict[str, list[dict]] = {}
        for line in Path(args.from_log).read_text().splitlines():
            if line.startswith("round "):
                _, _, variant, run = line.split(maxsplit=3)
                logged.setdefault(variant, []).append(json.loads(run))
        print_table(summarise(logged))
        return
    variants = args.variants.split(",")
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0], **versions()}
    if any(v.endswith(JAX_SUFFIX) for v in variants):
        import importlib.metadata

        machine["jax"] = importlib.metadata.version("jax")
    print("machine:", machine, flush=True)
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for round_ in range(args.rounds):
        order = variants[round_ % len(variants):] + variants[: round_ % len(variants)]
        for variant in order:
            run = spawn(variant)
            runs[variant].append(run)
            print(f"round {round_ + 1} {variant:18s} " + json.dumps(run, default=str), flush=True)
    summary = summarise(runs)
    machine["load_after"] = os.getloadavg()[0]
    print_table(summary)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "runs": runs, "summary": summary}, indent=1, default=str))


def summarise(runs: dict[str, list[dict]]) -> dict:
    summary: dict[str, dict] = {}
    base = None
    ok_loop = [r for r in runs.get("loop", []) if "wall" in r]
    if ok_loop:
        base = statistics.median(r["wall"] for r in ok_loop)
    for variant, results in runs.items():
        ok = [r for r in results if "wall" in r]
        if not ok:
            summary[variant] = {"error": results[0].get("error") if results else "not run"}
            continue
        wall = statistics.median(r["wall"] for r in ok)
        paired = [r["wall"] / b["wall"] for r, b in zip(results, runs.get("loop", []))
                  if "wall" in r and "wall" in b]  # same round: the load drifts less
        row = {"wall": wall, "ratio": wall / base if base else None, "runs": len(ok),
               "paired_ratio": statistics.median(paired) if paired else None,
               "best_params": ok[0]["best_params"], "best_score": ok[0]["best_score"]}
        if all("fit" in r for r in ok):
            row["outside_fit_per_trial"] = statistics.median((r["wall"] - r["fit"]) / r["trials"] for r in ok)
        if all("dispatch_median" in r for r in ok):
            row["dispatch_per_trial"] = statistics.median(r["dispatch_median"] for r in ok)
        summary[variant] = row
    return summary


def print_table(summary: dict) -> None:
    """Medians; "ratio" divides medians, "paired" is the median of same-round ratios to the loop."""
    print(f"\n{'variant':20s} {'wall s':>8s} {'ratio':>6s} {'paired':>7s} {'outside fit s/trial':>20s} {'dispatch s':>11s}  best")
    for variant, row in summary.items():
        if "error" in row:
            print(f"{variant:20s} error: {row['error']}")
            continue
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        ratio += f" {row['paired_ratio']:7.2f}" if row.get("paired_ratio") else "       -"
        outside = f"{row['outside_fit_per_trial']:.3f}" if "outside_fit_per_trial" in row else "-"
        dispatch = f"{row['dispatch_per_trial']:.3f}" if "dispatch_per_trial" in row else "-"
        print(f"{variant:20s} {row['wall']:8.1f} {ratio:>6s} {outside:>20s} {dispatch:>11s}  "
              f"{row['best_params']} {row['best_score']:.6f}")


if __name__ == "__main__":
    main()
