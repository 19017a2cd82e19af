"""GPU pinning as gridspec's worker processes see it, on a machine without TensorFlow.

    python benchmarks/gpu_env_check.py OUT_DIR

A GPU machine may have PyTorch but no TensorFlow (and no way to install it). This
checks the part of ``gpus=`` that doesn't need TensorFlow: every worker is a *spawned*
process that applies ``worker_environment(...)`` before importing any CUDA library, exactly
as ``executors/process.py``'s ``_worker_main`` does; here the worker then asks PyTorch which
GPUs it sees and runs a matrix product on the first, recording where it ran. Writes
``gpu_env_check.txt`` and ``.json`` under OUT_DIR.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridspec.executors.process import worker_environment  # noqa: E402  (no TensorFlow import)


def _worker(env: dict[str, str], results: "multiprocessing.Queue[dict]") -> None:
    os.environ.update(env)  # before any CUDA library is imported, as _worker_main does
    import torch

    seen = torch.cuda.device_count()
    row: dict = {"pid": os.getpid(), "CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES"), "gpus_seen": seen,
                 "names": [torch.cuda.get_device_name(i) for i in range(seen)]}
    if seen:
        started = time.perf_counter()
        a = torch.randn(4096, 4096, device="cuda:0")
        product = a @ a
        torch.cuda.synchronize()
        row.update(ran_on=str(product.device), matmul_s=round(time.perf_counter() - started, 4),
                   uuid=str(torch.cuda.get_device_properties(0).uuid))
    results.put(row)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-env-out")
    out.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    cases = {
        "gpus=[0], workers=1": (1, [0]),
        "gpus=[0], workers=2 (both share GPU 0)": (2, [0]),
        "gpus=[1] (absent on a 1-GPU machine)": (1, [1]),
        "no gpus= (not pinned)": (1, None),
    }
    report: dict[str, list[dict]] = {}
    for name, (workers, gpus) in cases.items():
        results: multiprocessing.Queue = ctx.Queue()
        procs = []
        for slot in range(workers):
            env = worker_environment(slot, workers, gpus, cores=os.cpu_count() or 1, base={})
            procs.append(ctx.Process(target=_worker, args=(env, results)))
        for p in procs:
            p.start()
        report[name] = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join()
    lines = []
    for name, rows in report.items():
        lines.append(name)
        for row in rows:
            lines.append("  " + json.dumps(row))
    text = "\n".join(lines)
    print(text)
    (out / "gpu_env_check.txt").write_text(text + "\n")
    (out / "gpu_env_check.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
