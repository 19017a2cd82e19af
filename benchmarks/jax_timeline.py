"""Where a JAX group's seed-12 search spends its time: timestamps around the trainer's phases.

    KERAS_BACKEND=jax python benchmarks/jax_timeline.py [--epochs 3]

One search of ``examples/seed_grid.py:build`` in this process (TensorFlow and JAX warm before
the clock starts, as in benchmarks/seed12.py), with the group's phases wrapped: the
symbolic build, making the steps (the programs traced and compiled ahead), the wait for
the training program's compile, each epoch and validation, emptying JAX's caches. Prints
seconds since ``search()`` was called at each phase's start (>) and end (<).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if os.environ.get("KERAS_BACKEND") != "jax":
        raise SystemExit("run it with KERAS_BACKEND=jax")
    import tensorflow as tf

    tf.constant(0.0) + 1.0
    import jax.numpy as jnp

    (jnp.zeros(1) + 1.0).block_until_ready()
    import workload as w
    from gridspec.training import fused, fused_trainer, jax_compile, jax_group

    started = [0.0]
    marks: list[tuple[float, str]] = []

    def wrap(owner: object, name: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def timed(*a: object, **k: object) -> object:
            marks.append((time.perf_counter() - started[0], f"> {name}"))
            try:
                return function(*a, **k)
            finally:
                marks.append((time.perf_counter() - started[0], f"< {name}"))

        setattr(owner, name, timed)

    for owner, name in [(fused_trainer.FusedTrainer, "_fit_members"), (jax_group._JaxGroupLoop, "_build"),
                        (jax_group._JaxGroupLoop, "_steps"), (jax_group, "_read_metrics"),
                        (jax_compile.Ahead, "wait"), (fused._GroupLoop, "_epoch"),
                        (fused._GroupLoop, "_validate"), (jax_group, "forget_compiled")]:
        wrap(owner, name)
    started[0] = time.perf_counter()
    result = w.seed_grid.build.search(epochs=args.epochs, steps_per_epoch=w.STEPS,
                                      validation_steps=w.VAL_STEPS, verbose=0)
    marks.append((time.perf_counter() - started[0], "search returned"))
    for at, what in marks:
        print(f"{at:7.3f} {what}")
    print(f"best {result.best_params} {result.best_score:.6f}")


if __name__ == "__main__":
    main()
