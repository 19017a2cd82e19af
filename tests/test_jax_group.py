"""The JAX group's own checks, in a process on the JAX backend (on a CPU; stacked members are
compared within float rounding, everything else bit for bit).

tests/jax_checks.py: what only the JAX group has (mid-epoch weight reads, numpy batches,
data on the device once, members named when they cannot join or fail to trace, group sizes
bounded by memory, Ctrl-C at an epoch end, programs compiled ahead on their own threads);
tests/jax_stack_checks.py: stacked members, forced on this CPU, against ``fuse=1``.
"""

from __future__ import annotations

from test_jax_fused import passed, run_on_jax


def test_the_jax_group_checks_hold():
    summary = run_on_jax("tests/jax_checks.py", "tests/jax_stack_checks.py")
    assert passed(summary) >= 15, summary
