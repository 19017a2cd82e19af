"""Fused trials on Keras's JAX backend equal ``fuse=1`` bit for bit (on a CPU).

One subprocess with ``KERAS_BACKEND=jax`` runs every fused-vs-``fit`` test that holds on
both backends (tests/test_fused.py and tests/test_fused_search.py compare exactly there):
one process keeps the suite fast. Tests that check nothing the backend decides (the shared
group size cap, Keras refusing to save a model) run once, on TensorFlow. The JAX group's
own checks run in tests/test_jax_group.py, a module of its own so that the two processes
may run side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

# TensorFlow-only tests: their models' own steps use tf.GradientTape or tf.debugging, or
# they check TensorFlow's tracing
ONLY_TF = ["subclassed", "promoted_group_whose_step_fails", "bad_fuse", "fused_supported", "cannot_join",
           "raises_while_traced", "fails_while_running", "traced_once"]
# the same code on both backends, with no fused-vs-fit comparison: the TensorFlow run covers them
BACKEND_FREE = ["group_size_cap_is_bounded", "cannot_be_saved"]


def run_on_jax(*args: str) -> str:
    """``pytest args`` in a process of its own on the JAX backend; its summary line, once
    every test in it passed and none was skipped."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "skipped" not in summary and "failed" not in summary, summary
    return summary


def passed(summary: str) -> int:
    return int(re.search(r"(\d+) passed", summary).group(1))


def test_the_fused_tests_hold_on_jax_bit_for_bit():
    summary = run_on_jax("tests/test_fused.py", "tests/test_fused_search.py",
                         "-k", " and ".join(f"not {t}" for t in ONLY_TF + BACKEND_FREE))
    assert passed(summary) >= 24, summary
