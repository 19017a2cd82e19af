"""``gs.sample``: a representative fraction of a data set, to tune on inside a data factory.

Tuning on a fraction that isn't representative picks the wrong combination. ``sample``
draws a subset whose class distribution (or, for a continuous target, distribution over
equal-count bins of the target) matches the whole: every stratum keeps ``fraction`` of its
samples, rounded so that the total is ``round(fraction * n)`` and each stratum is off by
less than one sample. Pure numpy (imported when first called, so ``import gridspec`` stays
light); no Keras.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gridspec.errors import GridSpecError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["sample"]

MAX_INTEGRAL_CLASSES = 50  # float targets with at most this many integral values are labels


def _length(name: str, value: Any) -> int:
    import numpy as np

    if isinstance(value, Mapping):
        lengths = {key: _length(f"{name}[{key!r}]", v) for key, v in value.items()}
        if not lengths:
            raise GridSpecError(f"{name} is an empty dict; give arrays with one row per sample")
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k!r}: {n}" for k, n in lengths.items())
            raise GridSpecError(f"the arrays of {name} have different numbers of samples ({shown})")
        return next(iter(lengths.values()))
    if not hasattr(value, "__len__") or isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        raise GridSpecError(
            f"{name} must be an array (or a dict of arrays) with one row per sample "
            f"(got {type(value).__name__})"
        )
    return len(value)


def _take(value: Any, index: np.ndarray) -> Any:
    import numpy as np

    if isinstance(value, Mapping):
        return {key: _take(v, index) for key, v in value.items()}
    if hasattr(value, "iloc"):  # pandas
        return value.iloc[index]
    if isinstance(value, np.ndarray):
        return value[index]
    return np.asarray(value)[index]


def _labels(y: Any, bins: int, n_kept: int) -> tuple[np.ndarray, bool]:
    """One stratum label per sample, and whether they are classes (not bins of a target)."""
    import numpy as np

    if isinstance(y, Mapping):
        y = next(iter(y.values()))  # several outputs: stratify on the first
    array = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if array.ndim > 1:
        flat = array.reshape(len(array), -1)
        if flat.shape[1] == 1:
            array = flat[:, 0]
        elif np.issubdtype(flat.dtype, np.number) and np.all((flat == 0) | (flat == 1)) and np.all(flat.sum(axis=1) == 1):
            return flat.argmax(axis=1), True  # one-hot
        else:
            array = flat[:, 0]  # several continuous targets: bin on the first
    if not np.issubdtype(array.dtype, np.floating):
        return array, True  # integers, booleans, strings: classes
    if np.all(np.isfinite(array)) and np.all(array == np.round(array)) and len(np.unique(array)) <= MAX_INTEGRAL_CLASSES:
        return array, True  # float labels such as 0.0 / 1.0
    # A continuous target: equal-count bins by rank (ties split by position), at most one bin
    # per kept sample so every bin can be represented.
    bins = max(1, min(bins, n_kept))
    order = np.argsort(array, kind="stable")
    strata = np.empty(len(array), dtype=np.int64)
    strata[order] = np.arange(len(array)) * bins // len(array)
    return strata, False


def sample(
    x: Any,
    y: Any,
    fraction: float,
    stratify: Any = True,
    seed: int = 0,
    *,
    bins: int = 10,
) -> tuple[Any, Any]:
    """A subset ``(x, y)`` with ``fraction`` of the samples, distributed like the whole.

    ``x`` and ``y`` are arrays (numpy, pandas, or dicts of them for multi-input models) with
    one row per sample. ``stratify=True`` keeps each class's share of ``y`` (integer, string
    or one-hot labels; float labels with few integral values count as classes); a continuous
    ``y`` is cut into ``bins`` equal-count bins of its value, and each bin keeps its share.
    ``stratify=False`` draws uniformly; an array of labels stratifies on those instead. The
    subset keeps the original order of the samples. The same ``seed`` gives the same subset.
    """
    import numpy as np

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)) or not 0 < fraction <= 1:
        raise GridSpecError(
            f"fraction must be a number in (0, 1], such as fraction=0.1 for a tenth of the "
            f"samples (got fraction={fraction!r})"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise GridSpecError(f"bins must be a positive integer, such as bins=10 (got bins={bins!r})")
    n = _length("x", x)
    n_y = _length("y", y)
    if n != n_y:
        raise GridSpecError(
            f"x and y must have the same number of samples (got x with {n}, y with {n_y})"
        )
    total = int(round(float(fraction) * n))
    if total < 1:
        raise GridSpecError(
            f"fraction={fraction!r} of {n} samples keeps no sample; use a fraction of at "
            f"least {1 / n:.3g} (got fraction={fraction!r})"
        )
    rng = np.random.default_rng(seed)
    if stratify is False or stratify is None:
        index = np.sort(rng.choice(n, size=total, replace=False))
        return _take(x, index), _take(y, index)
    if stratify is True:
        labels, are_classes = _labels(y, bins, total)
    else:
        if _length("stratify", stratify) != n:
            raise GridSpecError(
                f"stratify must be True, False or one label per sample (got {_length('stratify', stratify)} "
                f"labels for {n} samples)"
            )
        labels, are_classes = np.asarray(stratify), True
    index = _stratified(labels, float(fraction), total, rng, are_classes)
    return _take(x, index), _take(y, index)


def _stratified(labels: np.ndarray, fraction: float, total: int, rng: np.random.Generator, are_classes: bool) -> np.ndarray:
    import numpy as np

    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    quotas = counts * fraction
    if are_classes:
        rare = [(c, int(k)) for c, k, q in zip(classes, counts, quotas) if q < 1]
        if rare:
            label, count = rare[0]
            label = label.item() if hasattr(label, "item") else label
            need = math.ceil(1 / fraction)
            raise GridSpecError(
                f"class {label!r} of y is too rare to stratify: it has {count} sample"
                f"{'s' if count != 1 else ''}, and fraction={fraction!r} keeps {count * fraction:.2g} "
                f"of them; stratifying needs at least {need} samples per class at this fraction "
                f"(raise fraction, merge rare classes, or pass stratify=False)"
                + (f"; {len(rare)} classes are this rare" if len(rare) > 1 else "")
            )
    # Largest remainder: each stratum gets floor(quota) or one more, and the total comes out
    # right (round(f*n) - sum of floors is between 0 and the number of strata).
    take = np.floor(quotas).astype(np.int64)
    short = total - int(take.sum())
    if short > 0:
        remainders = quotas - take
        tiebreak = rng.random(len(classes))
        order = np.lexsort((tiebreak, -remainders))
        take[order[:short]] += 1
    chosen = []
    for k, want in enumerate(take):
        members = np.flatnonzero(inverse == k)
        if want > 0:
            chosen.append(rng.choice(members, size=int(want), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
