"""``distribute=``: data parallelism inside one trial.

Turns what the user passed (``None``, ``"mirrored"`` or a ``tf.distribute.Strategy``) into
a strategy; the trial builds and compiles the model in its scope and feeds it the same
batches, which Keras splits across the replicas. ``"mirrored"`` mirrors over every local
GPU, or over every logical CPU device when there is no GPU (so it can be tested on CPU).
Knows nothing of grids or executors; imports TensorFlow only when a strategy is asked for.
"""

from __future__ import annotations

from typing import Any

from gridspec.settings import check_distribute

__all__ = ["make_distribute"]


def make_distribute(value: Any) -> Any:
    """``None`` -> ``None``; ``"mirrored"`` -> a ``MirroredStrategy`` over all local devices."""
    check_distribute(value)
    if value != "mirrored":
        return value
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
