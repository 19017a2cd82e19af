"""Workload "seed-48" (docs/performance.md): the seed article's grid with a ``units=[16, 32, 64, 128]`` axis, the seed article's data.

One definition serves every benchmark: the grid lives in ``benchmarks/halving.py``.
"""

from halving import FEATURES, build, train, val  # noqa: F401  (the grid, and the seed article's data)
