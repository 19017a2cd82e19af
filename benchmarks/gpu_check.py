"""GPU pinning and placement check for one small search (the seed article's grid, its first 4 combinations, 1 epoch x 20 steps).

    python benchmarks/gpu_check.py OUT_DIR

Runs the seed article's grid in-process, with ``gpus=[0]`` (one worker pinned to GPU 0), with
``workers=2, gpus=[0]`` (two workers sharing GPU 0), with ``distribute="mirrored"`` and
with ``gpus=[1]`` (pinned to a GPU that a 1-GPU machine doesn't have: the worker must see
no GPU). A callback records, for every trial, the process, its CUDA_VISIBLE_DEVICES, the
GPUs TensorFlow sees and the device of the first kernel. Writes ``gpu_check.json`` and a
readable ``gpu_check.txt`` to OUT_DIR.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import keras

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))


class Placement(keras.callbacks.Callback):
    """Appends where the trial ran to the file named by GS_PLACEMENT_LOG (picklable)."""

    def on_train_end(self, logs=None):
        import tensorflow as tf

        weight = self.model.weights[0].value
        devices = [v.device for v in getattr(weight, "values", [weight])]
        record = {"pid": os.getpid(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "gpus_seen": [d.name for d in tf.config.list_logical_devices("GPU")],
                  "kernel_devices": devices,
                  "replicas": self.model.distribute_strategy.num_replicas_in_sync}
        with open(os.environ["GS_PLACEMENT_LOG"], "a") as f:
            f.write(json.dumps(record) + "\n")


VARIANTS = {
    "in-process": {},
    "gpus=[0]": {"gpus": [0]},
    "workers=2, gpus=[0]": {"workers": 2, "gpus": [0]},
    "distribute=mirrored": {"distribute": "mirrored"},
    "gpus=[1] (absent GPU)": {"gpus": [1]},
}


def main() -> None:
    import seed_grid
    import tensorflow as tf

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    report = {"gpus_in_parent": [d.name for d in tf.config.list_physical_devices("GPU")],
              "tensorflow": tf.__version__, "cores": os.cpu_count(), "variants": {}}
    lines = [f"physical GPUs in the parent: {report['gpus_in_parent']}; TF {tf.__version__}; "
             f"{os.cpu_count()} CPUs"]
    for name, settings in VARIANTS.items():
        log = out / f"placement-{len(report['variants'])}.jsonl"
        os.environ["GS_PLACEMENT_LOG"] = str(log)
        started = time.perf_counter()
        try:
            result = seed_grid.build.search(epochs=1, steps_per_epoch=20, validation_steps=5,
                                            max_trials=4, callbacks=[Placement()], **settings)
            summary = {"wall": round(time.perf_counter() - started, 2),
                       "best_score": result.best_score, "best_params": result.best_params,
                       "completed": len(result.completed), "failed": [t.error for t in result.failed]}
        except Exception as exc:  # report and go on to the next variant
            summary = {"error": f"{type(exc).__name__}: {exc}"}
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        summary["placements"] = sorted({json.dumps({k: r[k] for k in ("cuda", "gpus_seen", "kernel_devices", "replicas")})
                                        for r in records})
        summary["processes"] = len({r["pid"] for r in records})
        report["variants"][name] = summary
        lines.append(f"\n== {name}: {json.dumps({k: v for k, v in summary.items() if k != 'placements'})}")
        lines += [f"   placement: {p}" for p in summary["placements"]]
        print(lines[-1 - len(summary['placements'])], flush=True)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1))  # after each variant
        (out / "gpu_check.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
