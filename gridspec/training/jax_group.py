"""Train several compiled Keras models together on the JAX backend: one XLA program a step.

``fit_group`` here is ``fused.fit_group`` for Keras's JAX backend. Keras's JAX trainer has
pure steps, ``train_step(state, data) -> (logs, state)``: a group's step is one ``jax.jit``
over every member's ``train_step`` (its states donated, as ``fit`` donates one model's), and
one over their ``test_step`` s for validation. So a group compiles one program and
dispatches once per batch, where members trained one by one compile one each and dispatch
once per member and batch.

The loop is the TensorFlow group's (``fused._GroupLoop``: Keras's ``fit`` and ``evaluate``
step by step, per member: metrics reset per epoch, every callback hook with its logs,
``stop_training`` per member), with what Keras's ``JAXTrainer.fit`` adds around its steps:
each member's state is taken from its variables when its epoch begins (or when a callback
synced it mid-epoch), carried between steps as arrays, and put back into the model
(``jax_state_sync``) before anything reads its weights or metrics — an epoch's end, a
validation's, and the end of training. A callback that reads weights mid-epoch calls
``model.jax_state_sync()`` as it must under ``fit``, and the next step starts from them.

Each batch is read once for the group and placed on the device once (``jax.device_put``),
then shared by every member's step: an epoch moves each batch from the host once, not
once per member. Batches held in memory (a list) go to the device before the first step,
so no epoch moves anything from the host (``epoch_data``).

Both programs are compiled before the first step, each on a thread of its own
(``jax_compile``): the evaluation program while the main thread traces the training one,
the training one while the main thread calls the members' first callbacks, so the first
validation waits for no compile. Each is the program the first call would have compiled.

On a CPU every member's results are bit-identical to ``fit``'s: each member's computation
in the group's program is the one ``fit`` compiles for it alone. On a GPU XLA may pick other
kernels for the larger program, so results agree to float32 rounding only.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

from gridspec.training.fused import GroupOutcome, _GroupLoop, _Member, _MemberTraceError, _same, checked
from gridspec.training import jax_stack
from gridspec.training.fused_step import group_step_error
from gridspec.training.jax_compile import Ahead, collector_paused

__all__ = ["fit_group", "why_alone"]

_TRAIN_STATE = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")
_TEST_STATE = ("trainable_variables", "non_trainable_variables", "metrics_variables")


def why_alone(model: Any) -> str | None:
    """Why ``model`` cannot train in a JAX group, in words; ``None`` when it can."""
    import keras
    from keras.src.backend.config import is_nnx_enabled
    from keras.src.distribution import distribution_lib

    if keras.backend.backend() != "jax":
        return f"the Keras backend is {keras.backend.backend()}, not jax"
    if not isinstance(model, keras.Model):
        return f"it is a {type(model).__name__}, not a keras.Model"
    if not getattr(model, "compiled", False):
        return "the model is not compiled"
    if model.run_eagerly or not model.jit_compile:
        return "the model is compiled to run eagerly (run_eagerly=True or jit_compile=False)"
    if model.steps_per_execution != 1:
        return f"the model is compiled with steps_per_execution={model.steps_per_execution}"
    if distribution_lib.distribution() is not None:
        return "a keras.distribution is set"
    if is_nnx_enabled():
        return "Flax NNX is enabled"
    return None


def fit_group(
    models: Sequence[Any],
    train_data: Any,
    *,
    epochs: int,
    initial_epoch: int = 0,
    steps_per_epoch: int | None = None,
    validation_data: Any = None,
    validation_steps: int | None = None,
    callbacks: Sequence[Sequence[Any]] | None = None,
) -> list[GroupOutcome]:
    """Train ``models`` together as ``model.fit`` trains each alone (see ``fused.fit_group``).

    ``train_data`` and ``validation_data`` are what ``fit`` would get: a ``tf.data.Dataset``,
    or any iterable of numpy batches (``(x, y)`` or ``(x, y, sample_weight)``).
    """
    per_model, epochs = checked(models, callbacks, epochs, why_alone)
    with collector_paused():  # building the loop traces the group's programs
        loop = _JaxGroupLoop(models, per_model, epoch_data(train_data, steps_per_epoch), steps_per_epoch,
                             None if validation_data is None else epoch_data(validation_data, validation_steps),
                             validation_steps, epochs)
    try:
        loop.run(initial_epoch)
    finally:
        for m in loop.members:
            m.model._jax_state = None  # fit drops it at its end too: the arrays live in the variables
    return [m.outcome() for m in loop.members]


def epoch_data(data: Any, steps: int | None) -> Any:
    """``data`` in a form Keras's epoch iterator reads as ``fit`` would.

    A ``tf.data.Dataset``, a ``keras.utils.PyDataset``, a generator, or arrays as ``fit``
    takes them (a tuple ``(x, y[, sample_weight])``) go as they are: each batch then goes to
    the device as the group reads it, once for every member. A list of numpy batches (data
    held in memory) goes to the device once, before the first step, and each epoch reads it
    there: replayed from its start when ``steps`` is unset, read on across epochs when it
    is set, as ``fit`` reads a list's batches. Another iterable is read as it comes with
    ``steps`` (it may be endless), else collected into a list first.
    """
    import jax
    from keras.utils import PyDataset

    if (hasattr(data, "as_numpy_iterator") or isinstance(data, (PyDataset, tuple))
            or inspect.isgenerator(data)):
        return data
    if steps and not isinstance(data, list):
        return (batch for batch in data)
    placed = [jax.device_put(batch) for batch in data]
    if steps:
        return (batch for batch in placed)

    class Replay(PyDataset):  # type: ignore[misc]
        """The batches, one epoch: Keras reads it as it reads a ``PyDataset``."""

        def __len__(self) -> int:
            return len(placed)

        def __getitem__(self, index: int) -> Any:
            return placed[index]

    return Replay()


class _JaxGroupLoop(_GroupLoop):
    """``fused._GroupLoop`` with ``JAXTrainer.fit``'s iterators, build and state handling."""

    def _iterators(self, train_data: Any, steps_per_epoch: int | None, validation_data: Any,
                   validation_steps: int | None) -> tuple[Any, Any]:
        from keras.src.backend.jax.trainer import JAXEpochIterator
        from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

        train = JAXEpochIterator(x=train_data, steps_per_epoch=steps_per_epoch, shuffle=False,
                                 steps_per_execution=1)
        val = None
        if validation_data is not None:
            val_x, val_y, val_sample_weight = unpack_x_y_sample_weight(validation_data)
            val = JAXEpochIterator(x=val_x, y=val_y, sample_weight=val_sample_weight,
                                   steps_per_epoch=validation_steps, shuffle=False, steps_per_execution=1)
        return train, val

    def _build(self, models: Sequence[Any], train_data: Any) -> None:
        """``fit``'s ``_symbolic_build``: one batch read to build what isn't built yet (the
        compiled metrics and loss, the optimizer), then the iterator reset, as ``fit`` does."""
        batch = None
        if any(_unbuilt(model) for model in models):
            for _, _, iterator in self.train_iterator:
                batch = next(iterator)
                break
        self.train_iterator.reset()
        self._first_batch = batch
        for model in models:
            if batch is not None:
                model._symbolic_build(data_batch=batch)
            elif model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)

    def _steps(self, models: Sequence[Any]) -> tuple[Any, Any]:
        stack = jax_stack.enabled()
        train, test = _JaxGroupStep(models, "train_step", stack), _JaxGroupStep(models, "test_step", stack)
        if self._first_batch is not None and not stack:  # the batch _build read: what the steps will read
            # the evaluation program first: it compiles on the other core while the main
            # thread traces the training program (jax_compile). Stacked programs compile at
            # their first call (their plan traces the members there).
            if self.val_iterator is not None:
                _compile_ahead(test, self._first_batch)
            _compile_ahead(train, self._first_batch)
            _read_metrics(models)
        return train, test

    def _steps_begin(self, m: _Member) -> None:
        m.model._jax_state_synced = True  # the first step reads the state from the variables

    def _steps_end(self, m: _Member) -> None:
        m.model.jax_state_sync()


def _compile_ahead(step: _JaxGroupStep, batch: Any) -> None:
    """Start compiling ``step``'s program for all its members, as its first call will run it:
    their states as they are in their variables, and ``batch`` (a validation batch of the
    same shapes, for the evaluation program)."""
    key = tuple(range(len(step.models)))
    program = step._programs.get(key)
    if program is None:
        program = step._programs[key] = step._make(step.models, batch)
    states = tuple(model._get_jax_state(**{name: True for name in step.names}) for model in step.models)
    program[0].compile_ahead(states, batch)  # its types only: nothing goes to the device


def _read_metrics(models: Sequence[Any]) -> None:
    """Read each member's metrics once, as every epoch's end reads them, while the programs
    compile: the small eager ops that read compiles (a division, a comparison) are compiled
    then, not on the main thread at the first epoch's end. What is read is thrown away."""
    for model in models:
        try:
            model.get_metrics_result()
        except Exception:  # noqa: BLE001 - the epoch's end reads them again and meets it there
            pass


def _untracked(model: Any, name: str, value: Any) -> None:
    """``setattr`` past Keras's attribute tracker, which would walk every array of ``value``
    looking for variables and layers. A member's state is plain arrays, nothing to track:
    walked after every step of every member, it made 924 000 Python calls in 120 steps of a
    group of 12 (cProfile), against 180 000 without it."""
    object.__setattr__(model, name, value)


def _unbuilt(model: Any) -> bool:
    layers = not all(layer.built for layer in model._flatten_layers())
    metrics = model._compile_metrics is not None and not model._compile_metrics.built
    loss = model._compile_loss is not None and not model._compile_loss.built
    return layers or metrics or loss


class _JaxGroupStep:
    """One ``jax.jit`` over the active members' ``train_step`` (or ``test_step``).

    Called with Keras's epoch iterator's batch iterator and the members that step: reads one
    batch, places it on the device, takes each member's state (from its variables when it
    was synced since its last step, as ``fit`` does, else the arrays its last step left),
    runs the group's program and leaves each member's new state in ``model._jax_state``,
    where ``jax_state_sync`` finds it. Members that stopped are left out of a new program;
    programs are kept per membership, so a membership seen before compiles nothing.

    With ``stack`` (``jax_stack.enabled()``), members that are one program step as one
    stacked unit (``jax_stack.plan``): their states are carried stacked between steps, and
    a member that leaves the group (stopped, failed) leaves its stack, the rest go on.
    """

    def __init__(self, models: Sequence[Any], method: str, stack: bool = False) -> None:
        self.models = list(models)
        self.method = method
        self.stack = stack
        self.names = _TRAIN_STATE if method == "train_step" else _TEST_STATE
        self._programs: dict[tuple[int, ...], tuple[Any, list[jax_stack.Unit]]] = {}
        # member -> the state its last step left: (state, None, None) for a member alone,
        # (its stack's ``Stacked``, the stack's members, its position there) for a stacked one
        self._carried: dict[int, tuple[Any, tuple[int, ...] | None, int | None]] = {}

    def __call__(self, iterator: Any, members: list[_Member]) -> dict[int, Any]:
        import jax

        data = jax.device_put(next(iterator))  # once for the group; StopIteration ends the epoch
        key = tuple(m.index for m in members)
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = self._make([self.models[i] for i in key], data)
        function, units = program
        grouped = [[members[p] for p in unit.positions] for unit in units]
        states = tuple(self._state(ms[0]) if not unit.stacked else self._stacked_state(ms)
                       for unit, ms in zip(units, grouped, strict=True))
        try:
            logs, states = function(states, data)
        except Exception as exc:
            raise group_step_error(exc, key, self.method)
        for unit, ms, state in zip(units, grouped, states, strict=True):
            if not unit.stacked:
                self._carried[ms[0].index] = (state, None, None)
                # where ``jax_state_sync`` (a callback's, or the loop's) finds it, as fit leaves it
                _untracked(ms[0].model, "_jax_state", dict(zip(self.names, state, strict=True)))
                continue
            together = tuple(m.index for m in ms)
            stacked = jax_stack.Stacked(self.names, state)
            for position, m in enumerate(ms):
                self._carried[m.index] = (stacked, together, position)
                _untracked(m.model, "_jax_state", jax_stack.StackedSlice(stacked, position))
        if self.method == "train_step":
            for ms in grouped:
                for m in ms:
                    m.stacked = max(m.stacked, len(ms))
        order = [members[p].index for unit in units for p in unit.positions]
        return dict(zip(order, logs, strict=True))

    def _state(self, m: _Member) -> Any:
        """A member's state for its next step: from its variables when synced, else carried."""
        model = m.model
        carried = self._carried.pop(m.index, None)
        if model._jax_state_synced or carried is None:
            model._jax_state_synced = False
            return model._get_jax_state(**{name: True for name in self.names}, purge_model_variables=True)
        state, _, position = carried
        return state if position is None else tuple(state.member(position)[name] for name in self.names)

    def _stacked_state(self, members: list[_Member]) -> Any:
        """Stacked members' state: the stack their last step left when it is theirs alone and
        none was synced since, else stacked anew from each member's state."""
        together = tuple(m.index for m in members)
        carried = [self._carried.get(m.index) for m in members]
        first = carried[0]
        if (first is not None and all(c is not None and c[0] is first[0] and c[1] == together and c[2] == p
                                      for p, c in enumerate(carried))
                and not any(m.model._jax_state_synced for m in members)):
            for m in members:
                del self._carried[m.index]
            return first[0].state
        return jax_stack.stack_states([self._state(m) for m in members])

    def _make(self, models: list[Any], data: Any) -> tuple[Any, list[jax_stack.Unit]]:
        import jax

        kept = vars(models[0]).setdefault("_gridspec_group_functions", {})
        group = kept.get(self.method)
        steps = [getattr(model, self.method) for model in models]
        if group is not None and _same(group[0], models) and group[2] == self.stack:
            return group[1]
        units = (jax_stack.plan(models, self.method, self.names, data) if self.stack
                 else [jax_stack.Unit((i,)) for i in range(len(models))])

        def group_step(states: tuple[Any, ...], data: Any) -> tuple[list[Any], list[Any]]:
            logs, new_states = [], []
            for unit, state in zip(units, states, strict=True):
                try:
                    if unit.step is None:
                        unit_logs, unit_state = steps[unit.positions[0]](state, data)
                        logs.append(unit_logs)
                    else:
                        members_logs, unit_state = unit(state, data)
                        logs.extend(members_logs)
                except Exception as exc:  # raised while tracing: name the member
                    raise _MemberTraceError(unit.positions[0], exc) from exc
                new_states.append(unit_state)
            return logs, new_states

        program = (Ahead(jax.jit(group_step, donate_argnums=0)), units)
        kept[self.method] = (models, program, self.stack)  # the latest only: a promoted group reuses it
        return program


def forget_compiled() -> None:
    """Empty JAX's caches of compiled programs, after a group whose programs nothing keeps.

    JAX keeps every program it compiles — each small eager operation's for each shape it
    meets — as long as the process lives. A search whose models differ in shape (a grid over
    layer widths) meets new shapes in every group: over 200 such trials a process held 1.7
    times the memory it held after 20 (benchmarks/memory.py), 1.2 times when emptied after
    each group. A group's own programs are never reused by the next group (a new group is a
    new program), so emptying costs only the small operations' compiles again, which was
    within the noise of a three-group search of one shape.
    """
    import jax

    jax.clear_caches()


def activation_bytes(model: Any, batch_size: int) -> int:
    """Bytes one batch's activations take in ``model`` (each layer's output, kept for the
    backward pass), from the layers' output shapes; 0 where they are not known."""
    import numpy as np

    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        try:
            outputs = layer.output
        except Exception:  # noqa: BLE001 - a layer never called symbolically has no output
            continue
        for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            shape = getattr(out, "shape", None)
            if shape is None or any(d is None for d in shape[1:]):
                continue
            total += batch_size * int(np.prod(shape[1:])) * np.dtype(out.dtype).itemsize
    return total


def device_free_bytes() -> int | None:
    """Free memory on JAX's first device (an accelerator's own), or the host's on a CPU."""
    import jax

    from gridspec.training.grouping import free_memory_bytes

    device = jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return free_memory_bytes()


def group_size_cap(models: Sequence[Any], limit: int, batch_size: int = 32,
                   memory_bytes: int | None = None) -> int:
    """How many models like ``models`` one JAX group should hold: at most ``limit``, and no
    more than fit in ``grouping.MEMORY_SHARE`` of the device's free memory, each counted as its
    weights, optimizer state and gradients (``grouping.state_bytes``) plus one batch's
    activations, twice over: the program's donated inputs and its outputs. Always >= 1."""
    from gridspec.training.grouping import MEMORY_SHARE, _nbytes, state_bytes

    if not models:
        return limit
    per_model = max(2 * (state_bytes(m) + _nbytes(m.trainable_weights)) + activation_bytes(m, batch_size)
                    for m in models)
    memory = memory_bytes if memory_bytes is not None else device_free_bytes()
    if memory is None or per_model == 0:
        return limit
    return max(1, min(limit, int(memory * MEMORY_SHARE) // per_model))
