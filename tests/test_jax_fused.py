"""Fused trials on Keras's JAX backend equal ``fuse=1`` bit for bit (on a CPU).

One subprocess with ``KERAS_BACKEND=jax`` runs every fused-vs-``fit`` test that holds on
both backends (tests/test_fused.py and tests/test_fused_search.py compare exactly there)
and the JAX group's own checks (tests/jax_checks.py, tests/jax_stack_checks.py): one process
keeps the suite fast. Tests that check nothing the backend decides (the shared group size
cap, Keras refusing to save a model) run once, on TensorFlow.
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


def test_the_fused_tests_hold_on_jax_bit_for_bit():
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/jax_checks.py", "tests/jax_stack_checks.py",
               "tests/test_fused.py", "tests/test_fused_search.py", "-k", " and ".join(f"not {t}" for t in ONLY_TF + BACKEND_FREE)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 30 and "skipped" not in summary and "failed" not in summary, summary
