"""The search's own process stays light when trials run elsewhere (docs/workers.md).

With worker processes or Ray, a worker reads the first combination's data as it starts (the
probe), so the search's process never imports TensorFlow (about 600 MiB) for it, and a data
mistake still surfaces before anything trains or is written. Each case runs in a fresh
interpreter: this test process has TensorFlow loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

# A user module that imports Keras only where a model is built, as a light parent needs.
MODULE = '''
import numpy as np
import gridspec as gs


def _batches(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1]).astype("float32")


@gs.train_data
def train():
    yield from _batches(1, 6)


@gs.val_data
def val():
    yield from _batches(2, 2)


def broken():
    raise OSError("disk on fire")
    yield


@gs.grid(units=[2, 4], lr=[0.01, 0.05])
def build(units, lr):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model
'''

SCRIPT = '''
import json, os, resource, sys
import gridspec as gs
import lightmod

out = {}
if __name__ == "__main__":
    settings = dict(epochs=2, steps_per_epoch=3, validation_steps=2, seed=0, verbose=0)
    journal = os.path.join(os.environ["OUT_DIR"], "j.db")
    try:  # a data mistake, found by a worker as it starts: nothing trains, nothing is recorded
        lightmod.build.search(storage=journal, train=lightmod.broken, strategy="halving", eta=2, min_epochs=1, workers=2, **settings)
    except gs.GridSpecError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["journal_after_error"] = os.path.exists(journal)
    result = lightmod.build.search(storage=journal, strategy="halving", eta=2, min_epochs=1, workers=2, **settings)
    out["statuses"] = sorted(t.status.name for t in result.trials)
    out["tensorflow"] = "tensorflow" in sys.modules
    out["keras"] = "keras" in sys.modules
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))
'''


def test_the_search_process_never_imports_tensorflow_when_trials_run_elsewhere(tmp_path):
    # with workers=2; with Ray: tests/test_ctrl_c.py (the CLI) and tests/test_ray.py (a data mistake)
    (tmp_path / "lightmod.py").write_text(MODULE)
    (tmp_path / "main.py").write_text(textwrap.dedent(SCRIPT))
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]), "OUT_DIR": str(tmp_path),
           "GRIDSPEC_CHECKPOINT_DIR": str(checkpoints), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["error"] == "DataError: data factory 'broken' (train_data) raised OSError at batch 0: disk on fire"
    assert out["journal_after_error"] is False  # refused before the journal was opened
    assert out["statuses"] == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert out["tensorflow"] is False and out["keras"] is False, out
    assert list(checkpoints.iterdir()) == []  # the halving folders went with the searches
