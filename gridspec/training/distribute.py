"""``distribute=``: data parallelism inside one trial.

Turns what the user passed (``None``, ``"mirrored"`` or a ``tf.distribute.Strategy``) into
a strategy; the trial builds and compiles the model in its scope and feeds it the same
batches, which Keras splits across the replicas. ``"mirrored"`` mirrors over every local
GPU, or over every logical CPU device when there is no GPU (so it can be tested on CPU).
Knows nothing of grids or executors; imports TensorFlow only when a strategy is asked for.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from gridspec.errors import GridSpecError, MissingExtra
from gridspec.settings import check_distribute

__all__ = ["check_available", "make_distribute"]


def check_available(value: Any) -> None:
    """Refuse ``distribute=`` before anything starts where it can't work: ``tf.distribute``
    needs TensorFlow installed and Keras running on it. Looks without importing TensorFlow,
    so the search's own process stays light."""
    try:
        found = importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtra(
            f"distribute={value!r} (--distribute) needs tensorflow, which is not installed "
            f"(tf.distribute is TensorFlow's); install it with pip install tensorflow, or leave distribute unset"
        )
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        raise GridSpecError(
            f"distribute={value!r} (--distribute) needs Keras's TensorFlow backend (KERAS_BACKEND is "
            f"{backend!r}); leave distribute unset, or run with KERAS_BACKEND=tensorflow"
        )


def make_distribute(value: Any) -> Any:
    """``None`` -> ``None``; ``"mirrored"`` -> a ``MirroredStrategy`` over all local devices."""
    check_distribute(value)
    if value != "mirrored":
        return value
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
