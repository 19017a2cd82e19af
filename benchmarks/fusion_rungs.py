"""Halving-like rungs with ``fit_group``: the same models continue in smaller groups.

    PYTHONPATH=. python benchmarks/fusion_rungs.py

Seed-12's 12 models (batches in memory, 20 steps per epoch, 10 validation steps) train one
epoch together; then the same model objects continue — all 12 for epoch 2, the first 4 for
epochs 3 and 4 — each rung one ``fit_group`` call. A model keeps its traced step between
calls, so a later rung re-traces only the group's thin outer function. For comparison,
``fit`` continues each of the same models alone (``model.fit(initial_epoch=...)`` on the
model object, which also keeps its train function). Prints each rung's seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RUNGS = [(0, 1, 12), (1, 2, 12), (2, 3, 4), (3, 4, 4)]  # (initial_epoch, epochs, members)


def main() -> None:
    import keras

    import fusion_probe as probe
    from gridspec.training.fused import fit_group

    spec = probe.WORKLOADS["seed-12"]
    axes, _, _, val_steps, features, batch, hidden = spec
    combos = probe.combinations(axes)
    train, val = probe.make_data(features, batch, 20, val_steps)
    print("seed-12 models, 20 steps per epoch, 10 validation steps; seconds per rung")
    for how in ("fit_group", "fit"):
        models = [probe.build(combo, features, hidden) for combo in combos]
        for start, end, count in RUNGS:
            started = time.perf_counter()
            if how == "fit_group":
                fit_group(models[:count], train, epochs=end, initial_epoch=start,
                          steps_per_epoch=20, validation_data=val)
            else:
                for model in models[:count]:
                    model.fit(train, epochs=end, initial_epoch=start, steps_per_epoch=20,
                              validation_data=val, verbose=0, shuffle=False)
            print(f"  {how:9} epochs {start + 1}..{end}, {count:2} models: "
                  f"{time.perf_counter() - started:.2f} s", flush=True)
        del models
        keras.backend.clear_session(free_memory=False)


if __name__ == "__main__":
    main()
