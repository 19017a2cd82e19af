"""Fused trials on JAX, on a GPU: gridspec's group vs ``fuse=1`` vs the seed's loop.

    KERAS_BACKEND=jax python benchmarks/gpu_jax.py OUT_DIR [--quick] [--workloads seed12,seed48,...]

Workloads: seed-12 and seed-48 (docs/performance.md), mlp-512 (12 × ``64→3×512→1``), a
small CNN (12 convnets on 28×28×1, Dropout, accuracy) and lr-48 (one ``64→3×512→1`` MLP
with 48 learning rates). For each, four ways of training every combination on the same
batches, each model built right after ``keras.utils.set_random_seed(0)``:

- ``group``: gridspec's default on JAX, its trainer core: ``jax_group.fit_group`` over groups
  of ``JAX_AUTO_GROUP_SIZE``, bounded by memory, as ``FusedTrainer`` forms them (``level``
  in the JSON says so; the training, not a whole ``search()``).
- ``stacked``: the same groups with stacked members forced on (``GRIDSPEC_STACK=1``: members
  that are one program step as one ``jax.vmap`` over their stacked states; ``stacks`` in the
  JSON gives their sizes), and ``group`` with stacking off (``GRIDSPEC_STACK=0``): which of
  the two pays on this device is what decides ``fuse="auto"``'s default there.
- ``fuse1``: ``fuse=1`` — each model alone through Keras's ``fit`` (as ``search(fuse=1)``).
- ``loop``: the seed's hand-written loop, ``model.fit`` on a generator, one model after another.

Prints and writes (``gpu_jax.json``) per workload and way: wall seconds, seconds per epoch
after compiling (all models), compile seconds per member (first epoch minus a later one),
and against ``fuse1``: the largest relative difference of any ``val_loss`` and whether the
winner and the top 3 changed. Then seed-12 through ``search()`` itself, its defaults against
``fuse=1`` (``search_seed12``; ``--no-search`` skips it). ``--quick`` runs tiny sizes (a CPU check of the script).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WAYS = ("stacked", "group", "fuse1", "loop")
sys.path.insert(0, str(HERE.parent))


# -- the workloads: (combinations, build(params), batch maker, features/shape, settings) -------
def seed_model(lr: float, act_in: str, act_out: str, units: int = 32, features: int = 16) -> Any:
    import keras

    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(units, activation=act_in),
                              keras.layers.Dense(32, activation=act_in), keras.layers.Dense(1, activation=act_out)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


def mlp(lr: float, act_in: str = "relu", act_out: str = "linear") -> Any:
    import keras

    layers = [keras.Input((64,))] + [keras.layers.Dense(512, activation=act_in) for _ in range(3)]
    model = keras.Sequential(layers + [keras.layers.Dense(1, activation=act_out)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


def cnn(lr: float, filters: int, dropout: float) -> Any:
    import keras

    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(filters, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * filters, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(dropout), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def regression(shape: tuple[int, ...], batch: int, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    weights = np.random.default_rng(7).normal(size=(int(np.prod(shape)), 1)).astype("float32")
    out = []
    for _ in range(count):
        x = rng.normal(size=(batch, *shape)).astype("float32")
        y = 0.5 + 0.4 * np.tanh(x.reshape(batch, -1) @ weights / np.sqrt(weights.size))
        out.append((x, y.astype("float32")))
    return out


def digits(batch: int, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.random((batch, 28, 28, 1)).astype("float32")
        out.append((x, (x[:, :14].mean(axis=(1, 2, 3)) * 40).astype("int32") % 10))
    return out


def workloads(quick: bool) -> dict[str, dict[str, Any]]:
    acts = [(a, o) for a in ("relu", "swish", "tanh") for o in ("tanh", "sigmoid")]
    s = (lambda full, tiny: tiny if quick else full)  # noqa: E731
    return {
        "seed12": {"combos": [dict(lr=lr, act_in=a, act_out=o) for lr in (0.001, 0.0005) for a, o in acts],
                   "build": seed_model, "data": lambda n, seed: regression((16,), 64, n, seed),
                   "epochs": s(3, 2), "steps": s(50, 3), "val": s(10, 2)},
        "seed48": {"combos": [dict(lr=lr, act_in=a, act_out=o, units=u) for lr in (0.001, 0.0005) for a, o in acts
                              for u in (16, 32, 64, 128)][: s(48, 8)],
                   "build": seed_model, "data": lambda n, seed: regression((16,), 64, n, seed),
                   "epochs": s(3, 2), "steps": s(20, 3), "val": s(5, 2)},
        "mlp512": {"combos": [dict(lr=lr, act_in=a, act_out=o) for lr in (0.001, 0.0005)
                              for a, o in [(a, o) for a in ("relu", "swish", "tanh") for o in ("linear", "sigmoid")]][: s(12, 4)],
                   "build": mlp, "data": lambda n, seed: regression((64,), s(256, 16), n, seed),
                   "epochs": s(3, 2), "steps": s(100, 3), "val": s(10, 2)},
        "cnn": {"combos": [dict(lr=lr, filters=f, dropout=d) for lr in (0.001, 0.003) for f in (8, 16, 32)
                           for d in (0.0, 0.3)][: s(12, 4)],
                "build": cnn, "data": lambda n, seed: digits(s(64, 8), n, seed),
                "epochs": s(3, 2), "steps": s(100, 3), "val": s(10, 2)},
        "lr48": {"combos": [dict(lr=float(lr)) for lr in np.geomspace(1e-4, 3e-2, s(48, 6))],
                 "build": mlp, "data": lambda n, seed: regression((64,), s(256, 16), n, seed),
                 "epochs": s(3, 2), "steps": s(50, 3), "val": s(10, 2)},
    }


# -- timing -------------------------------------------------------------------------------------
def clock() -> Any:
    """A callback class recording when each model's epochs end (deep-copyable, shared log)."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        log: list[tuple[int, int, float]] = []

        def on_train_begin(self, logs: Any = None) -> None:
            EpochClock.log.append((id(self._model), -1, time.perf_counter()))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            EpochClock.log.append((id(self._model), epoch, time.perf_counter()))

    return EpochClock


def epoch_figures(log: list[tuple[int, int, float]], members_per_program: int) -> dict[str, float]:
    """Seconds per epoch after compiling (every model's share summed) and compile seconds per
    member (first epoch minus the median later one, over the members sharing a program)."""
    by_model: dict[int, list[tuple[int, float]]] = {}
    for model, epoch, t in log:
        by_model.setdefault(model, []).append((epoch, t))
    # models of one group end each epoch together: their durations are the group's
    firsts, laters = [], []
    for marks in by_model.values():
        marks.sort()
        durations = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
        if durations:
            firsts.append(durations[0])
            laters.append(float(np.median(durations[1:])) if len(durations) > 1 else 0.0)
    programs = max(1, len(by_model) // members_per_program) if members_per_program > 1 else len(by_model)
    share = programs / max(1, len(by_model))  # each group's time once, not once per member
    later = sum(laters) * share
    compile_ = (sum(firsts) - sum(laters)) * share / max(1, len(by_model))
    return {"epoch_s": later, "compile_s_per_member": compile_}


# -- the four ways -------------------------------------------------------------------------------
def built(spec: dict[str, Any], params: dict[str, Any]) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    return spec["build"](**params)


def run_alone(spec: dict[str, Any], train: list[Any], val: list[Any], generator: bool) -> dict[str, Any]:
    import keras

    from gridspec.training.jax_group import epoch_data

    Clock = clock()
    Clock.log = []
    histories = []
    started = time.perf_counter()
    for params in spec["combos"]:
        model = built(spec, params)
        data = (b for b in train) if generator else epoch_data(train, spec["steps"])
        history = model.fit(data, epochs=spec["epochs"], steps_per_epoch=spec["steps"],
                            validation_data=epoch_data(val, None), callbacks=[Clock()], verbose=0, shuffle=False)
        histories.append(history.history)
        keras.backend.clear_session(free_memory=False)
    wall = time.perf_counter() - started
    return {"wall": wall, "histories": histories, **epoch_figures(Clock.log, 1)}


def run_group(spec: dict[str, Any], train: list[Any], val: list[Any], stack: bool) -> dict[str, Any]:
    import keras

    from gridspec.training import JAX_AUTO_GROUP_SIZE, jax_stack
    from gridspec.training.jax_group import fit_group, group_size_cap

    os.environ[jax_stack.STACK_ENV] = "1" if stack else "0"
    stacks: list[int] = []
    plan = jax_stack.plan

    def recording(models: Any, method: str, *args: Any) -> Any:
        units = plan(models, method, *args)
        if method == "train_step" and len(models) == len(spec["combos"][:JAX_AUTO_GROUP_SIZE]):
            stacks.extend(len(u.positions) for u in units if u.stacked)
        return units

    jax_stack.plan = recording

    Clock = clock()
    Clock.log = []
    histories: list[Any] = []
    combos = spec["combos"]
    started = time.perf_counter()
    size = JAX_AUTO_GROUP_SIZE
    index = 0
    sizes = []
    while index < len(combos):
        models = []
        for params in combos[index:index + size]:
            keras.backend.clear_session(free_memory=False)
            models.append(built(spec, params))
        cap = group_size_cap(models, size, len(train[0][0]))
        models = models[:cap]
        sizes.append(len(models))
        outcomes = fit_group(models, train, epochs=spec["epochs"], steps_per_epoch=spec["steps"],
                             validation_data=val, callbacks=[[Clock()] for _ in models])
        histories.extend(o.history for o in outcomes)
        index += len(models)
        del models
        keras.backend.clear_session(free_memory=False)
    wall = time.perf_counter() - started
    jax_stack.plan = plan
    return {"wall": wall, "histories": histories, "groups": sizes, "level": "trainer-core", "stacks": stacks,
            **epoch_figures(Clock.log, max(sizes))}


def compare(got: list[dict[str, list[float]]], oracle: list[dict[str, list[float]]]) -> dict[str, Any]:
    worst = 0.0
    for g, o in zip(got, oracle):
        for a, b in zip(g["val_loss"], o["val_loss"]):
            if np.isfinite(a) and np.isfinite(b):
                worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    rank = lambda hs: sorted(range(len(hs)), key=lambda i: min(hs[i]["val_loss"]))  # noqa: E731
    return {"max_rel_diff": worst, "same_winner": rank(got)[0] == rank(oracle)[0],
            "same_top3": rank(got)[:3] == rank(oracle)[:3]}


def warm(spec: dict[str, Any], train: list[Any], val: list[Any]) -> None:
    """First-use costs for this workload's shapes (JAX's op compiles, Keras's first builds),
    paid before any way is timed: two members, one step, stacked and not."""
    small = {**spec, "combos": spec["combos"][:2], "epochs": 1, "steps": 1}
    for stack in (True, False):
        run_group(small, train[:1], val[:1], stack)


def run_searches(quick: bool) -> dict[str, Any]:
    """seed-12 through ``search()`` itself: the defaults against ``fuse=1``, wall seconds
    (the search's, models built and data read by gridspec) and the same comparisons."""
    import gridspec as gs

    spec = workloads(quick)["seed12"]
    train = spec["data"](spec["epochs"] * spec["steps"], 1234)
    val = spec["data"](spec["val"], 4321)

    @gs.grid(lr=[0.001, 0.0005], act_in=["relu", "swish", "tanh"], act_out=["tanh", "sigmoid"])
    def seed12(lr: float, act_in: str, act_out: str) -> Any:
        return seed_model(lr, act_in, act_out)

    settings = dict(epochs=spec["epochs"], steps_per_epoch=spec["steps"], validation_steps=spec["val"],
                    train=lambda: train, val=lambda: val)
    row: dict[str, Any] = {}
    histories = {}
    for way, fuse in (("default", "auto"), ("fuse1", 1)):
        started = time.perf_counter()
        result = seed12.search(fuse=fuse, **settings)
        row[way] = {"wall": time.perf_counter() - started, "best": dict(result.best_params)}
        histories[way] = [dict(t.history) for t in result.trials]
    row["default"].update(compare(histories["default"], histories["fuse1"]))
    row["default_over_fuse1"] = row["default"]["wall"] / row["fuse1"]["wall"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script on a CPU")
    parser.add_argument("--workloads", default="seed12,seed48,mlp512,cnn,lr48")
    parser.add_argument("--no-search", action="store_true", help="skip seed-12 through search()")
    args = parser.parse_args()
    import jax
    import keras

    assert keras.backend.backend() == "jax", "run with KERAS_BACKEND=jax"
    (jax.numpy.zeros(1) + 1).block_until_ready()
    info = {"devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "keras": keras.__version__,
            "load": os.getloadavg(), "quick": args.quick}
    print(json.dumps(info), flush=True)
    results: dict[str, Any] = {"machine": info, "workloads": {}}
    specs = workloads(args.quick)
    for number, name in enumerate(args.workloads.split(",")):
        spec = specs[name]
        train = spec["data"](spec["epochs"] * spec["steps"], 1234)
        val = spec["data"](spec["val"], 4321)
        row: dict[str, Any] = {"models": len(spec["combos"]), "epochs": spec["epochs"], "steps": spec["steps"]}
        warm(spec, train, val)
        ways = WAYS if number % 2 == 0 else ("group", "stacked", *WAYS[2:])  # no way always first
        for way in ways:
            try:
                if way in ("stacked", "group"):
                    got = run_group(spec, train, val, stack=way == "stacked")
                else:
                    got = run_alone(spec, train, val, generator=way == "loop")
            except Exception as exc:  # noqa: BLE001 - report and go on to the next way
                row[way] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                continue
            row[way] = got
        oracle = row.get("fuse1", {}).get("histories")
        for way in ("stacked", "group", "loop"):
            if oracle and "histories" in row.get(way, {}):
                row[way].update(compare(row[way]["histories"], oracle))
        for way in WAYS:
            row.get(way, {}).pop("histories", None)
        for way in ("stacked", "group"):
            if "wall" in row.get(way, {}) and "wall" in row.get("fuse1", {}):
                row[f"{way}_over_fuse1"] = row[way]["wall"] / row["fuse1"]["wall"]
                if row[way]["epoch_s"] > 0:
                    row[f"{way}_epoch_speedup"] = row["fuse1"]["epoch_s"] / row[way]["epoch_s"]
        results["workloads"][name] = row
        print(name, json.dumps(row, default=float), flush=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_jax.json").write_text(json.dumps(results, indent=1, default=float))
    if not args.no_search:
        try:
            results["search_seed12"] = run_searches(args.quick)
        except Exception as exc:  # noqa: BLE001 - report it with the figures already written
            results["search_seed12"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print("search_seed12", json.dumps(results["search_seed12"], default=float), flush=True)
        (Path(args.out) / "gpu_jax.json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
