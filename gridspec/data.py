"""Data factories' output -> endless, checked batches -> what ``fit`` reads.

Owns the seed article's data pipeline (see the README), done properly: a factory may return a generator (or any
iterable) of ``(x, y)`` / ``(x, y, sample_weight)`` batches, a ``tf.data.Dataset``, or an
in-memory ``(x, y)`` pair of arrays. Generators are made endless (the factory is called
again when one runs out); the element signature is inferred from the first batch and every
later batch is checked against it, so a mistake names the factory and the batch index
instead of surfacing as a TensorFlow stack trace.

Fairness lives here too: for factories that don't depend on trial parameters, the
``epochs x steps_per_epoch`` training batches are read once per search and replayed to every
trial (same batches, same order, and no Python generator per trial); validation always
replays the same first ``validation_steps`` batches at every epoch; in-memory arrays are
shuffled in an order that depends only on the seed and the epoch. ``gridspec.feeds`` turns
the batches into ``tf.data`` on the TensorFlow backend and into numpy batches on the others,
so TensorFlow is imported only where Keras runs on it (or a factory returned a
``tf.data.Dataset``). Knows nothing of models, strategies or executors.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from gridspec.errors import DataError, GridSpecError
from gridspec.settings import DEFAULT_CACHE_BYTES
from gridspec.values import a_kind

__all__ = ["Source", "Sources", "DEFAULT_CACHE_BYTES", "DEFAULT_ARRAY_BATCH_SIZE"]

DEFAULT_ARRAY_BATCH_SIZE = 32  # Keras's own default for in-memory arrays

_FORMS_HINT = (
    "return a generator of (x, y) batches of numpy arrays (or dicts of them), "
    "a tf.data.Dataset, or an in-memory (x, y) pair of arrays"
)


def _loaded_tf() -> Any:
    """TensorFlow if something already imported it (a ``tf.data.Dataset`` can't exist otherwise)."""
    return sys.modules.get("tensorflow")


def _is_leaf_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype")
    )


def _is_arrays_pair(value: Any) -> bool:
    """``(x, y)`` or ``(x, y, w)`` whose parts are arrays or dicts of arrays."""
    if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
        return False
    return all(
        _is_leaf_array(part)
        or (isinstance(part, Mapping) and part and all(_is_leaf_array(v) for v in part.values()))
        for part in value
    )


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in value[:4])
        return f"{a_kind(value)} of {len(value)} ({inner})"
    return a_kind(value)


class _Layout:
    """The structure of one batch: which parts, dict keys, dtypes and per-sample shapes."""

    def __init__(self, batch: tuple[Any, ...]) -> None:
        self.parts = tuple(self._part_layout(p) for p in batch)

    @staticmethod
    def _part_layout(part: Any) -> Any:
        if isinstance(part, dict):
            return {k: (v.dtype, v.shape[1:]) for k, v in part.items()}
        return (part.dtype, part.shape[1:])

    def describe_difference(self, other: _Layout) -> str | None:
        if len(self.parts) != len(other.parts):
            return f"{len(other.parts)} parts instead of {len(self.parts)}"
        names = ("x", "y", "sample_weight")
        for name, want, got in zip(names, self.parts, other.parts):
            if isinstance(want, dict) != isinstance(got, dict):
                kinds = ("a dict" if isinstance(got, dict) else "an array",
                         "a dict" if isinstance(want, dict) else "an array")
                return f"{name} is {kinds[0]} where the first batch had {kinds[1]}"
            if isinstance(want, dict):
                if set(want) != set(got):
                    return f"{name} has keys {sorted(got)} instead of {sorted(want)}"
                for key in want:
                    diff = self._leaf_difference(f"{name}[{key!r}]", want[key], got[key])
                    if diff:
                        return diff
            else:
                diff = self._leaf_difference(name, want, got)
                if diff:
                    return diff
        return None

    @staticmethod
    def _leaf_difference(name: str, want: Any, got: Any) -> str | None:
        if want[0] != got[0]:
            return f"{name} has dtype {got[0]} instead of {want[0]}"
        if want[1] != got[1]:
            return f"{name} has per-sample shape {tuple(got[1])} instead of {tuple(want[1])}"
        return None


def _normalise_batch(batch: Any, label: str, index: int) -> tuple[Any, ...]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise DataError(
            f"data factory {label} yielded {_describe(batch)} as batch {index}; each batch "
            f"must be an (x, y) or (x, y, sample_weight) tuple of numpy arrays or dicts of them"
        )

    def leaf(value: Any, where: str) -> np.ndarray:
        if not _is_leaf_array(value):
            several = (" (for several inputs, use a dict keyed by the keras.Input names, such as "
                       "({'a': x1, 'b': x2}, y))") if isinstance(value, (list, tuple)) else ""
            raise DataError(
                f"data factory {label} yielded {where} of type {type(value).__name__} in batch "
                f"{index}; batches must hold numpy arrays (or dicts of them){several}"
            )
        array = np.asarray(value)
        if array.ndim == 0:
            raise DataError(
                f"data factory {label} yielded a scalar {where} in batch {index}; arrays need a "
                f"batch dimension first"
            )
        return array

    names = ("x", "y", "sample_weight")
    out: list[Any] = []
    for name, part in zip(names, batch):
        if isinstance(part, Mapping):
            out.append({str(k): leaf(v, f"{name}[{k!r}]") for k, v in part.items()})
        else:
            out.append(leaf(part, name))
    return tuple(out)


def _check_same_length(arrays: tuple[Any, ...], label: str) -> None:
    """An in-memory pair's parts must have one sample count, said once, before any trial."""
    counts: dict[str, int] = {}
    for name, part in zip(("x", "y", "sample_weight"), arrays):
        leaves = part.items() if isinstance(part, dict) else [(None, part)]
        for key, array in leaves:
            counts[name if key is None else f"{name}[{key!r}]"] = len(array)
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name} has {count:,}" for name, count in counts.items())
        raise DataError(
            f"data factory {label} returned arrays with different numbers of samples ({shown}); "
            f"x, y (and sample_weight) must have one row per sample"
        )


def _nbytes(batch: tuple[Any, ...]) -> int:
    total = 0
    for part in batch:
        leaves = part.values() if isinstance(part, dict) else (part,)
        total += sum(int(a.nbytes) for a in leaves)
    return total


def batch_len(batch: tuple[Any, ...]) -> int:
    first = batch[0]
    leaf = next(iter(first.values())) if isinstance(first, dict) else first
    return int(leaf.shape[0])


def concatenate(batches: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    out: list[Any] = []
    for i, part in enumerate(batches[0]):
        if isinstance(part, dict):
            out.append({k: np.concatenate([b[i][k] for b in batches]) for k in part})
        else:
            out.append(np.concatenate([b[i] for b in batches]))
    return tuple(out)


class Source:
    """One data factory bound to its arguments: probed once, then turned into what ``fit``
    reads (``gridspec.feeds``: ``tf.data`` on TensorFlow, numpy batches on other backends).

    ``error`` holds a ``DataError`` raised while TensorFlow was reading the factory's
    batches; the stream ends quietly instead of letting TensorFlow log and wrap it, and the
    trial re-raises it (``raise_pending``) as gridspec's own error naming the factory.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        kind: str,
        args: Mapping[str, Any],
        label: str,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.fn = fn
        self.kind = kind
        self.args = dict(args)
        self.label = label
        self.cache_bytes = cache_bytes
        self.error: DataError | None = None
        self._batch_bytes = 0
        self._lock = threading.Lock()
        self._replay: dict[int, Any] = {}  # batch count -> its batches (as tf.data on TensorFlow)
        # Batches per epoch of a stream that says so (a ``keras.utils.PyDataset``, a list of
        # batches): each epoch reads them all, as Keras's ``fit`` does, with no ``steps`` needed.
        self.length: int | None = None
        self.form, self._value, self._layout = self._probe()

    # -- probing ---------------------------------------------------------------------------
    def _call(self) -> Any:
        try:
            return self.fn(**self.args)
        except GridSpecError:
            raise
        except Exception as exc:
            raise DataError(
                f"data factory {self.label} raised {type(exc).__name__}: {exc}"
            ) from exc

    def _probe(self) -> tuple[str, Any, _Layout | None]:
        value = self._call()
        tf = _loaded_tf()
        if tf is not None and isinstance(value, tf.data.Dataset):
            spec = value.element_spec
            if not isinstance(spec, tuple) or len(spec) not in (2, 3):
                raise DataError(
                    f"data factory {self.label} returned a tf.data.Dataset whose elements are "
                    f"{spec!r}; its elements must be (x, y) or (x, y, sample_weight) batches"
                )
            return "dataset", value, None
        if _is_arrays_pair(value):
            arrays = _normalise_batch(value, self.label, 0)
            _check_same_length(arrays, self.label)
            return "arrays", arrays, _Layout(arrays)
        if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[0], list) and value[0] \
                and all(_is_leaf_array(v) for v in value[0]):
            raise DataError(
                f"data factory {self.label} returned x as a list of {len(value[0])} arrays; for a model "
                f"with several inputs, return them as a dict keyed by the keras.Input names, such as "
                f"({{'a': x1, 'b': x2}}, y)"
            )
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise DataError(f"data factory {self.label} returned {_describe(value)}; {_FORMS_HINT}")
        iterator = iter(value)
        try:
            first = next(iterator)
        except StopIteration:
            raise DataError(f"data factory {self.label} yielded no batches; {_FORMS_HINT}") from None
        except Exception as exc:
            raise DataError(
                f"data factory {self.label} raised {type(exc).__name__} at batch 0: {exc}"
            ) from exc
        batch = _normalise_batch(first, self.label, 0)
        self._batch_bytes = _nbytes(batch)
        self.length = _known_length(value)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        return "stream", None, _Layout(batch)

    @property
    def endless(self) -> bool:
        """Whether one epoch can't be defined without ``steps`` (a generator, an infinite dataset)."""
        if self.form == "stream":
            return self.length is None
        if self.form == "dataset":
            tf = _loaded_tf()
            return int(self._value.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
        return False

    # -- reading ---------------------------------------------------------------------------
    def batches(self) -> Iterable[tuple[Any, ...]]:
        """The factory's batches, checked, forever: the factory is called again on exhaustion."""
        assert self._layout is not None
        index = 0
        while True:
            produced = 0
            iterator = iter(self._call())
            while True:
                try:
                    raw = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:
                    raise DataError(
                        f"data factory {self.label} raised {type(exc).__name__} at batch "
                        f"{index}: {exc}"
                    ) from exc
                batch = _normalise_batch(raw, self.label, index)
                difference = self._layout.describe_difference(_Layout(batch))
                if difference:
                    raise DataError(
                        f"data factory {self.label} changed its batch structure at batch "
                        f"{index}: {difference}; every batch must match the first"
                    )
                yield batch
                index += 1
                produced += 1
            if produced == 0:
                raise DataError(
                    f"data factory {self.label} yielded no batches when called again at batch "
                    f"{index}; a factory must yield the same data every time it is called"
                )

    def _guarded(self) -> Iterable[tuple[Any, ...]]:
        """``batches()`` for TensorFlow's thread: errors are kept, the stream just ends."""
        try:
            yield from self.batches()
        except DataError as exc:
            self.error = exc

    def raise_pending(self) -> None:
        """Re-raise an error that happened while TensorFlow was reading the batches."""
        error, self.error = self.error, None
        if error is not None:
            raise error

    def _stream(self, count: int, start: int = 0) -> Any:
        from gridspec import feeds

        if feeds.tensorflow_backend():
            assert self._layout is not None
            dataset = feeds.tf_stream(self._guarded, self._layout, count)
            return dataset.skip(start) if start else dataset
        return feeds.stream(lambda: iter(self.batches()), count, start)

    def _materialise(self, count: int, start: int = 0) -> Any:
        """Read ``count`` batches once; replay them from memory (from ``start``) to every caller."""
        from gridspec import feeds

        on_tf = feeds.tensorflow_backend()
        with self._lock:
            kept: Any = self._replay.get(count)
            if kept is None:
                batches = []
                for batch in self.batches():
                    batches.append(batch)
                    if len(batches) == count:
                        break
                assert self._layout is not None
                kept = feeds.tf_replay(batches, self._layout) if on_tf else batches
                self._replay[count] = kept
        if not on_tf:
            return feeds.replay(kept, start)
        return kept.skip(start) if start else kept

    def _fits_in_cache(self, count: int) -> bool:
        if self.cache_bytes <= 0 or self.args:  # parameter-dependent data is streamed
            return False
        return self._batch_bytes * count <= self.cache_bytes

    def training(self, epochs: int, steps_per_epoch: int | None, seed: int, batch_size: int,
                 start_epoch: int = 0) -> Any:
        """What ``fit`` trains on: exactly ``epochs x steps_per_epoch`` batches when steps are
        set (from epoch ``start_epoch`` on: the batches a full run would see next)."""
        from gridspec import feeds

        skip = start_epoch * steps_per_epoch if steps_per_epoch else 0
        if self.form == "arrays":
            order = feeds.ArrayOrder(batch_len(self._value), batch_size, seed,
                                     first_pass=0 if steps_per_epoch else start_epoch)
            endless = bool(steps_per_epoch)  # steps set: pass after pass, as one stream
            if feeds.tensorflow_backend():
                return feeds.tf_arrays(self._value, order, endless, skip)
            return feeds.array_batches(self._value, order, endless, skip)
        if self.form == "dataset":
            dataset = self._value.repeat() if steps_per_epoch else self._value
            return dataset.skip(skip) if skip else dataset
        if steps_per_epoch is None:  # a stream of known length: every epoch reads it all, anew
            assert self.length is not None
            return self._materialise(self.length) if self._fits_in_cache(self.length) else self._stream(self.length)
        count = epochs * steps_per_epoch
        if self._fits_in_cache(count):
            return self._materialise(count, skip)
        return self._stream(count, skip)

    def validation(self, steps: int | None, batch_size: int) -> Any:
        """What ``validation_data`` is: the same first ``steps`` batches at every epoch."""
        from gridspec import feeds

        if self.form == "arrays":
            if feeds.tensorflow_backend():
                return feeds.tf_batched(self._value, batch_size, steps)
            order = feeds.ArrayOrder(batch_len(self._value), batch_size, 0, shuffle=False)
            return feeds.array_batches(self._value, order, endless=False, count=steps)
        if self.form == "dataset":
            if steps is None:
                return self._value
            tf = _loaded_tf()
            return self._value.repeat().take(steps).apply(tf.data.experimental.assert_cardinality(steps))
        if steps is None:  # a stream of known length: all of it
            assert self.length is not None
            steps = self.length
        return self._materialise(steps)


def _known_length(value: Any) -> int | None:
    """``len(value)`` for a stream that has one (a ``PyDataset``, a list of batches), else None."""
    if isinstance(value, Iterator) or not hasattr(value, "__len__"):
        return None
    try:
        length = len(value)
    except Exception:  # noqa: BLE001 - an endless PyDataset may refuse: then it has no length
        return None
    return length if isinstance(length, int) and length > 0 else None


class Sources:
    """A search's data: one ``Source`` per factory and distinct arguments, probed once.

    Trials whose factories get the same arguments share a ``Source`` (and so its replayed
    batches); ``key`` says which trials read the same batches, which is what may train
    together in a fused group.
    """

    def __init__(self, train: Callable[..., Any], val: Callable[..., Any] | None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        from gridspec.decorators import factory_label

        self.fns = {"train": train, "val": val}
        self.labels = {kind: factory_label(fn, kind) for kind, fn in self.fns.items() if fn is not None}
        self.cache_bytes = cache_bytes
        self._sources: dict[tuple[str, str], Source] = {}

    def _args(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        from gridspec.decorators import select

        fn = self.fns[kind]
        return select(fn, params) if fn is not None else {}

    def key(self, params: Mapping[str, Any]) -> tuple[str, str, Any]:
        """Equal for trials that read exactly the same batches."""
        return (repr(sorted(self._args("train", params).items())),
                repr(sorted(self._args("val", params).items())),
                params.get("batch_size"))

    def get(self, kind: str, params: Mapping[str, Any]) -> Source | None:
        fn = self.fns[kind]
        if fn is None:
            return None
        args = self._args(kind, params)
        key = (kind, repr(sorted(args.items())))
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = Source(fn, kind, args, self.labels[kind], self.cache_bytes)
        return source
