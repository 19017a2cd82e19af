"""Compile a JAX group's programs before their first call, each on a thread of its own.

XLA compiles outside Python's lock. A group's evaluation program, lowered as soon as the
members exist, compiles on the second core while the main thread traces the training
program; the training program then compiles while the main thread goes on to the
members' callbacks and the first batch. Started in turn, the evaluation program costs the
first validation nothing and the training program's compile shortens the start-up by
what the main thread does meanwhile (docs/performance.md, "Fused trials on JAX").

What is compiled is what the first call would have compiled: the same ``jax.jit``
function lowered for the same argument types, so the results are the same bit for bit.
``Lowered.compile`` leaves its executable in ``jax.jit``'s own cache, where the call finds
it; a call with other argument types (a validation batch of another shape) compiles then,
as it would have anyway. Lowering runs in the caller's thread, where Keras's scopes are.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

__all__ = ["Ahead", "collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a group's models are built and its
    programs traced.

    Both allocate objects by the hundred thousand, nearly all of which live on. The
    collector walks the young ones every 700 allocations and, once enough have piled up,
    every object in the process (TensorFlow's and Keras's too): in a seed-12 search with
    TensorFlow imported, one such walk of 0.2-0.5 s on the main thread while it traced,
    which freed almost nothing. Paused, the young objects are walked once when the collector
    is back on, and the full walk comes later, when enough has piled up again. A collector
    the user turned off stays off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Ahead:
    """A ``jax.jit`` function whose programs may be compiled ahead of its calls.

    ``compile_ahead(*args)`` lowers for ``args`` (arrays, or anything ``lower`` takes) and
    compiles in a new thread; a call first waits for those compiles, so it never compiles
    the same program a second time beside them.
    """

    def __init__(self, jitted: Any) -> None:
        self.jitted = jitted
        self._pending: list[Future[Any]] = []
        self._compiled: list[Any] = []  # kept as long as the function: the cache holds them too

    def compile_ahead(self, *args: Any) -> bool:
        """Start compiling for ``args``; False when lowering failed (the call will say why)."""
        try:
            lowered = self.jitted.lower(*args)
        except Exception:  # noqa: BLE001 - a step that fails to trace fails again, named, when called
            return False
        future: Future[Any] = Future()

        def compile_() -> None:
            try:
                future.set_result(lowered.compile())
            except BaseException as exc:  # noqa: BLE001 - the call compiles again and raises it
                future.set_exception(exc)

        # a thread of its own, not a pool: nothing outlives the compile (a pool's idle
        # threads would be lost across a fork and its queue never run)
        threading.Thread(target=compile_, name="gridspec-xla-compile").start()
        self._pending.append(future)
        return True

    def wait(self) -> None:
        """Until every compile started here has finished."""
        pending, self._pending = self._pending, []
        for future in pending:
            if future.exception() is None:
                self._compiled.append(future.result())

    def __call__(self, *args: Any) -> Any:
        if self._pending:
            self.wait()
        return self.jitted(*args)
