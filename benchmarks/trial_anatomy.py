"""Where a seed-12 trial's time goes inside ``fit``: the first epoch (tracing) vs the rest.

    PYTHONPATH=. python benchmarks/trial_anatomy.py [--trials 4]

Prints, per trial, fit's wall time and each epoch's and each validation pass's seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()

    import keras
    import seed_grid

    class Anatomy(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[tuple[float, list[float], list[float]]] = []

        def on_train_begin(self, logs=None):
            self.t0, self.epochs, self.vals = time.perf_counter(), [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.e0 = time.perf_counter()

        def on_test_begin(self, logs=None):
            self.v0 = time.perf_counter()

        def on_test_end(self, logs=None):
            self.vals.append(time.perf_counter() - self.v0)

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(time.perf_counter() - self.e0)

        def on_train_end(self, logs=None):
            self.rows.append((time.perf_counter() - self.t0, self.epochs, self.vals))

    anatomy = Anatomy()
    seed_grid.build.search(epochs=3, steps_per_epoch=50, validation_steps=10, callbacks=[anatomy],
                           max_trials=args.trials)
    for fit, epochs, vals in anatomy.rows:
        print(f"fit {fit:.3f}s  epochs {[round(e, 3) for e in epochs]}  validation {[round(v, 3) for v in vals]}")
    first = statistics.median(r[1][0] for r in anatomy.rows)
    later = statistics.median(e for r in anatomy.rows for e in r[1][1:])
    fit = statistics.median(r[0] for r in anatomy.rows)
    print(f"median: fit {fit:.3f}s, first epoch {first:.3f}s ({first / fit:.0%}), later epochs {later:.3f}s each")


if __name__ == "__main__":
    main()
