"""Which way an objective goes: ``infer_direction("val_binary_io_u") == "max"``.

Owns the vocabulary of Keras 3's metric names (``keras.metrics.*``'s default ``name``, the
string shortcuts such as ``"acc"`` and ``"mae"``, the ``val_`` prefix and the ``_1`` suffix
Keras adds to a repeated name) and the direction each implies. User-named metrics are read
by the same words (``val_my_auc`` is maximised). Knows nothing of Keras itself: the names
are text, so importing this module costs nothing.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["Direction", "infer_direction"]

Direction = Literal["min", "max"]

# Lower is better, whatever else the name says: losses, errors, counts of mistakes.
_LOWER = re.compile(
    r"loss|error|crossentropy|hinge|divergence|poisson|logcosh|false_(?:positive|negative)"
    r"|(?:^|_)(?:mse|mae|mape|msle|rmse|kld|kl)(?:_|$)"
)
# Higher is better: Keras 3's accuracy-, AUC-, precision/recall-, F-score-, IoU-like metrics,
# similarities, correlations, R², sensitivity/specificity (also ``*_at_*``), true counts.
_HIGHER = re.compile(
    r"accuracy|precision|recall|sensitivity|specificity|similarity|correlation|fbeta"
    r"|true_(?:positive|negative)|io_u|iou"
    r"|(?:^|_)(?:acc|auc|f1|r2|score)(?:_|$)"
)


def infer_direction(name: str) -> Direction:
    """``"max"`` for a higher-is-better Keras metric name, else ``"min"`` (losses, errors,
    and names the vocabulary doesn't know)."""
    key = name.lower()
    key = key[4:] if key.startswith("val_") else key
    if _LOWER.search(key):
        return "min"
    return "max" if _HIGHER.search(key) else "min"

