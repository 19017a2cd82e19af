"""How many fits train together: the one place ``fuse`` becomes a group size.

``group_size_for(fuse, backend)`` is the largest group a search's ``fuse`` allows: ``"auto"``
is ``AUTO_GROUP_SIZE`` on TensorFlow and ``JAX_AUTO_GROUP_SIZE`` on JAX, and an explicit ``fuse=N`` is the user's own cap, which may be larger.
``planned_group_size`` is the same decision made without Keras, where the search's process
plans groups for trials that train elsewhere. ``group_size_cap`` bounds one group by memory
as its members are built: never more than that cap, and never more members than fit, with
their gradients, in ``MEMORY_SHARE`` of the memory it is given (``free_memory_bytes()``).
Imports no Keras (a model's state is measured from its variables' shapes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gridspec.settings import FUSE_AUTO

__all__ = ["AUTO_GROUP_SIZE", "JAX_AUTO_GROUP_SIZE", "MEMORY_SHARE", "free_memory_bytes", "group_size_cap", "group_size_for",
           "planned_group_size", "state_bytes"]

# The largest group ``fuse="auto"`` forms: past it a group's traced step grows faster than
# the start-up it saves (benchmarks/fusion_probe.py; docs/performance.md has the figures).
AUTO_GROUP_SIZE = 12
# On JAX a group is one XLA program, and each program has a large fixed cost to compile and
# dispatch: larger groups keep paying where TensorFlow's stop (docs/performance.md, "Fused
# trials on JAX"). Bounded by memory too (``group_size_cap``).
JAX_AUTO_GROUP_SIZE = 48
#: The share of the machine's free memory one group's model state may take.
MEMORY_SHARE = 0.25


def group_size_for(fuse: int | str, backend: str = "tensorflow") -> int:
    """The largest group ``fuse`` allows on ``backend``: for ``"auto"``, ``AUTO_GROUP_SIZE``
    on TensorFlow and ``JAX_AUTO_GROUP_SIZE`` on JAX; else ``fuse`` (the user's own cap)."""
    if fuse != FUSE_AUTO:
        return int(fuse)
    return JAX_AUTO_GROUP_SIZE if backend == "jax" else AUTO_GROUP_SIZE


def planned_group_size(fuse: int | str, distribute: Any = None) -> int:
    """How many fits a trainer may train at once under these settings, known without
    importing Keras: the search's process plans groups with it when the trials (and Keras)
    live in worker processes or on Ray. TensorFlow and JAX fuse; the backend is read from
    ``KERAS_BACKEND`` (a backend chosen in ``~/.keras/keras.json`` alone is not seen here, and
    then each worker trains a planned group's members in groups of its own size)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if fuse == 1 or distribute is not None or backend not in ("tensorflow", "jax"):
        return 1
    return group_size_for(fuse, backend)


def state_bytes(model: Any) -> int:
    """Bytes of ``model``'s variables and its optimizer's (estimated when not built yet).

    An optimizer that is not built yet is counted as two slots per trainable weight (Adam's
    two moments), the most the common optimizers keep.
    """
    total = _nbytes(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        total += _nbytes(optimizer.variables)
    else:
        total += 2 * _nbytes(model.trainable_weights)
    return total


def _nbytes(variables: Any) -> int:
    import numpy as np

    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def free_memory_bytes() -> int | None:
    """The memory this machine has free, or ``None`` where that cannot be read."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def group_size_cap(models: Sequence[Any], limit: int, memory_bytes: int | None) -> int:
    """How many models like ``models`` one group should hold: at most ``limit`` (the
    trainer's ``group_size_for(fuse)``), and no more than fit, with their gradients, in
    ``MEMORY_SHARE`` of ``memory_bytes`` (None: unknown, no bound). Pass the models built so
    far; the largest sets the size. Always >= 1."""
    if not models:
        return max(1, limit)
    per_model = max(state_bytes(m) + _nbytes(m.trainable_weights) for m in models)
    if memory_bytes is None or per_model == 0:
        return max(1, limit)
    return max(1, min(limit, int(memory_bytes * MEMORY_SHARE) // per_model))
