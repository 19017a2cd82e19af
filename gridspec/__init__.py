"""gridspec: declarative, honest, fast hyperparameter grid search for Keras models.

``@grid`` declares the axes on the function that builds the model, ``@train_data`` /
``@val_data`` declare where batches come from, and ``build.search()`` (or ``gridspec run``)
trains every combination on the same data. Importing this package imports no TensorFlow.
"""

from __future__ import annotations

from gridspec.decorators import grid, train_data, val_data
from gridspec.errors import (
    DataError,
    GridError,
    GridSpecError,
    JournalError,
    LookupFailed,
    SearchError,
    SearchInterrupted,
)
from gridspec.result import SearchResult, Trial, TrialStatus
from gridspec.sample import sample

__all__ = [
    "DataError",
    "GridError",
    "GridSpecError",
    "JournalError",
    "LookupFailed",
    "SearchError",
    "SearchInterrupted",
    "SearchResult",
    "Trial",
    "TrialStatus",
    "grid",
    "sample",
    "train_data",
    "val_data",
]

__version__ = "0.2.0"
