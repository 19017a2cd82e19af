"""Checked batches -> what Keras's ``fit`` reads: ``tf.data`` on TensorFlow, numpy elsewhere.

``data.py`` decides which batches a trial reads (replayed, streamed, shuffled arrays);
this module only turns them into the object ``fit`` takes. On the TensorFlow backend that
is a ``tf.data.Dataset``. On the others (JAX, and any other) it is a ``NumpyBatches``: a
``keras.utils.PyDataset`` whose ``__iter__`` is a plain iterable of numpy batch tuples, so
no TensorFlow is imported, and a group trainer can read it as it is or through Keras's own
epoch iterator. Both follow the rule Keras's ``fit`` applies to data with a length: with
``steps_per_epoch`` one iterator runs on across epochs until the batches are used up;
without it every epoch reads the whole length again from the first batch.

In-memory arrays are shuffled by ``ArrayOrder``: the order of pass ``k`` over the arrays is
a function of the seed and ``k`` alone, so a run that continues at epoch ``k`` (halving)
reads exactly the batches an uninterrupted run reads there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import keras
import numpy as np

__all__ = ["ArrayOrder", "NumpyBatches", "array_batches", "replay", "stream",
           "tensorflow_backend", "tf_arrays", "tf_batched", "tf_replay", "tf_stream"]


def tensorflow_backend() -> bool:
    """Whether Keras runs on TensorFlow: only then is the data built as ``tf.data``."""
    return bool(keras.config.backend() == "tensorflow")


def _take(part: Any, rows: Any) -> Any:
    if isinstance(part, dict):
        return {k: v[rows] for k, v in part.items()}
    return part[rows]


class ArrayOrder:
    """Which rows each batch of in-memory arrays holds, pass by pass.

    Pass ``k`` (one read of every row) is ``default_rng([seed, k]).permutation(rows)`` cut
    into batches of ``batch_size`` (the last one may be short, as Keras's is), or the rows
    in order when ``shuffle`` is off. Rows that fit in one batch stay in order: shuffling
    them would change nothing but rounding, and a pass of one batch can't be told from a
    look at its first batch (below). ``first_pass`` is where a run that continues starts.
    """

    def __init__(self, rows: int, batch_size: int, seed: int, shuffle: bool = True,
                 first_pass: int = 0) -> None:
        self.rows = rows
        self.batch_size = batch_size
        self.seed = seed % 2**64
        self.per_pass = -(-rows // batch_size)
        self.shuffle = shuffle and self.per_pass > 1
        self.current = first_pass  # the pass being read (no steps set)
        self._past_first = False  # whether a batch after the first was read in it
        self._cached: tuple[int, np.ndarray] | None = None

    def _permutation(self, k: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != k:
            order = (np.random.default_rng([self.seed, k]).permutation(self.rows) if self.shuffle
                     else np.arange(self.rows))
            self._cached = (k, order)
        return self._cached[1]

    def rows_of(self, k: int, j: int) -> np.ndarray:
        """The rows of batch ``j`` of pass ``k``."""
        return self._permutation(k)[j * self.batch_size:(j + 1) * self.batch_size]

    def at(self, index: int) -> np.ndarray:
        """The rows of the ``index``-th batch of the endless read (pass after pass)."""
        return self.rows_of(*divmod(index, self.per_pass))

    def in_pass(self, j: int) -> np.ndarray:
        """The rows of batch ``j`` of the pass being read, where each epoch reads one pass.

        A new pass starts when its first batch is read after a later batch of the previous
        one: ``fit`` may look at a first batch before it trains (the JAX backend does, for a
        model not built yet) or open an iterator it never reads, and neither starts a pass.
        """
        if j == 0 and self._past_first:
            self.current += 1
            self._past_first = False
        elif j > 0:
            self._past_first = True
        return self.rows_of(self.current, j)


class NumpyBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """Numpy batch tuples for ``fit`` on a backend other than TensorFlow.

    ``length`` batches (``None``: endless), read by index from 0; ``iter()`` starts at
    batch 0 each time. ``get(i)`` gives batch ``i``.
    """

    def __init__(self, get: Callable[[int], tuple[Any, ...]], length: int | None) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self._get = get
        self.length = length

    @property
    def num_batches(self) -> int | None:
        return self.length

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("an endless stream of batches has no length")
        return self.length

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        if self.length is not None and not 0 <= index < self.length:
            raise IndexError(index)
        return self._get(index)


def replay(batches: list[tuple[Any, ...]], start: int = 0) -> NumpyBatches:
    """Stored batches from ``start`` on."""
    return NumpyBatches(lambda i: batches[start + i], len(batches) - start)


class _Reader:
    """Batch ``i`` of a stream read in order; going back starts the stream again."""

    def __init__(self, open_stream: Callable[[], Iterator[tuple[Any, ...]]], start: int) -> None:
        self.open_stream = open_stream
        self.start = start
        self.iterator: Iterator[tuple[Any, ...]] | None = None
        self.position = 0  # the stream's index of the next batch
        self.last: tuple[int, tuple[Any, ...]] | None = None

    def __call__(self, index: int) -> tuple[Any, ...]:
        wanted = self.start + index
        if self.last is not None and self.last[0] == wanted:
            return self.last[1]
        if self.iterator is None or wanted < self.position:
            self.iterator, self.position = self.open_stream(), 0
        while True:
            batch = next(self.iterator)
            self.position += 1
            if self.position - 1 == wanted:
                self.last = (wanted, batch)
                return batch


def stream(open_stream: Callable[[], Iterator[tuple[Any, ...]]], count: int, start: int = 0) -> NumpyBatches:
    """Batches ``start`` to ``count`` of a checked stream, read as ``fit`` asks for them."""
    return NumpyBatches(_Reader(open_stream, start), count - start)


def _rows(arrays: tuple[Any, ...], rows: np.ndarray) -> tuple[Any, ...]:
    return tuple(_take(part, rows) for part in arrays)


def array_batches(arrays: tuple[Any, ...], order: ArrayOrder, endless: bool, start: int = 0,
                  count: int | None = None) -> NumpyBatches:
    """Batches of in-memory arrays: endless from batch ``start`` (steps set: pass after pass),
    or one pass per read (``count`` batches of it at most, for validation)."""
    if endless:
        return NumpyBatches(lambda i: _rows(arrays, order.at(start + i)), None)
    length = order.per_pass if count is None else min(count, order.per_pass)
    if order.shuffle:
        return NumpyBatches(lambda j: _rows(arrays, order.in_pass(j)), length)
    return NumpyBatches(lambda j: _rows(arrays, order.rows_of(0, j)), length)


# -- tf.data (the TensorFlow backend) ------------------------------------------------------------
def _tf() -> Any:
    import tensorflow as tf

    return tf


def signature(layout: Any) -> Any:
    """The ``tf.TensorSpec`` structure of batches laid out as ``layout`` (``data._Layout``)."""
    tf = _tf()

    def spec(leaf: Any) -> Any:
        dtype, shape = leaf
        return tf.TensorSpec(shape=(None, *shape), dtype=tf.as_dtype(dtype))

    return tuple(
        {k: spec(v) for k, v in part.items()} if isinstance(part, dict) else spec(part)
        for part in layout.parts
    )


def tf_stream(generate: Callable[[], Iterable[tuple[Any, ...]]], layout: Any, count: int) -> Any:
    """The first ``count`` batches of a Python stream, read by TensorFlow as it trains."""
    tf = _tf()
    return tf.data.Dataset.from_generator(generate, output_signature=signature(layout)).take(count)


def tf_replay(batches: list[tuple[Any, ...]], layout: Any) -> Any:
    """Stored batches, replayed from memory (sliced from one tensor when they are all one size)."""
    from gridspec.data import batch_len, concatenate

    tf = _tf()
    sizes = {batch_len(b) for b in batches}
    if len(sizes) == 1:
        dataset = tf.data.Dataset.from_tensor_slices(concatenate(batches)).batch(sizes.pop())
    else:  # ragged batch sizes: replay the stored list as it is
        dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature(layout))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))


def tf_batched(arrays: tuple[Any, ...], batch_size: int, count: int | None) -> Any:
    """In-memory arrays in order, in batches of ``batch_size`` (the first ``count`` of them)."""
    tf = _tf()
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
    return dataset if count is None else dataset.take(count)


def tf_arrays(arrays: tuple[Any, ...], order: ArrayOrder, endless: bool, start: int = 0) -> Any:
    """``array_batches`` as ``tf.data``: the rows of each batch come from ``order`` (one
    Python call per batch), the batch itself is gathered by TensorFlow."""
    tf = _tf()
    tensors = tf.nest.map_structure(tf.constant, arrays)

    def rows() -> Iterator[np.ndarray]:
        if endless:
            index = start
            while True:
                yield order.at(index)
                index += 1
        else:
            for j in range(order.per_pass):
                yield order.in_pass(j)

    indices = tf.data.Dataset.from_generator(rows, output_signature=tf.TensorSpec((None,), tf.int64))
    dataset = indices.map(lambda i: tf.nest.map_structure(lambda t: tf.gather(t, i), tensors))
    if endless:
        return dataset.repeat()  # the generator never ends; tells Keras the data is endless
    return dataset.apply(tf.data.experimental.assert_cardinality(order.per_pass))
