"""Train several compiled Keras models together, one traced step per batch for the group.

``fit_group`` is ``model.fit`` for a group of models that read the same batches: every batch
is fetched once and handed to one ``tf.function`` that calls each member's own
``model.train_step`` (and, for validation, one that calls each ``model.test_step``). Each
model keeps its own loss, metrics, optimizer and callbacks; only the batches are shared.
What a member sees — its weights, its history, the calls its callbacks get and the logs in
them — is what ``model.fit(train_data, epochs=..., initial_epoch=..., steps_per_epoch=...,
validation_data=..., callbacks=..., verbose=0, shuffle=False)`` gives it alone: the loop
below follows Keras 3's ``TensorFlowTrainer.fit`` and ``evaluate`` line by line (and reuses
its ``TFEpochIterator``, so epochs, ``steps_per_epoch`` and data that runs out behave the
same), and each member's step is wrapped exactly as ``make_train_function`` wraps it.

A search asked to stop (a first Ctrl-C) stops the group at its next epoch end:
``gridspec.interrupt.check_stop`` raises ``StopAtEpochEnd`` there.
A member whose callback sets ``model.stop_training`` leaves the group where ``fit`` would
stop; the group's step is then rebuilt without it (see ``fused_step._GroupStep``). A member
whose callback raises leaves the group with that exception in its ``GroupOutcome``. An
exception inside the traced step itself raises ``GroupStepError``: the models are then in
an unknown state, and the caller rebuilds them and trains each alone.

Each model keeps its wrapped step, and a group its function (on its first model), as ``fit``
keeps ``model.train_function``: calling ``fit_group`` again with the same models, or a subset
of them, re-traces nothing or only the group's thin outer function. ``release(models)``
drops what was kept.

Same results as alone, with one caveat: random ops a custom ``train_step`` draws without a
Keras ``SeedGenerator`` of its own (stateful ``tf.random.*`` ops, whose seeds depend on their
place in the traced graph, or Keras's global seed generator) may draw other numbers in a
group. Keras layers (``Dropout`` and the rest) carry their own seed state and are unaffected.

TensorFlow backend only (``fused_supported()``); ``jax_group`` runs the same loop on JAX.
Knows nothing of gridspec's engine, strategies, journal or executors: it takes models,
datasets and callbacks, and returns histories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from gridspec.interrupt import check_stop
from gridspec.training.fused_step import (  # _MemberTraceError, _same: the JAX group's too
    GroupStepError,
    _build_state,
    _GroupStep,
    _MemberTraceError as _MemberTraceError,
    _same as _same,
)

__all__ = [
    "GroupOutcome",
    "GroupStepError",
    "fit_group",
    "fused_supported",
    "release",
    "why_alone",
]


@attrs.frozen
class GroupOutcome:
    """One member's result: its ``History.history`` as ``fit`` returns it, or its error.

    ``history`` holds every epoch the member completed (from ``initial_epoch`` on), one float
    per epoch per key. ``error`` is the exception raised for this member alone (by one of its
    callbacks, or while its logs were read); its history then stops at the last epoch it
    completed. ``stacked`` is how many members (itself included) its steps were batched with
    under ``jax.vmap`` (``jax_stack``): 1 when it trained as its own program.
    """

    history: dict[str, list[float]]
    error: BaseException | None = None
    stacked: int = 1


def fused_supported() -> bool:
    """Whether this process's Keras backend can train a group (TensorFlow only)."""
    import keras

    return bool(keras.backend.backend() == "tensorflow")


def why_alone(model: Any) -> str | None:
    """Why ``model`` cannot train in a group, in words; ``None`` when it can."""
    import keras

    if not fused_supported():
        return f"the Keras backend is {keras.backend.backend()}; fusion needs tensorflow"
    if not isinstance(model, keras.Model):
        return f"it is a {type(model).__name__}, not a keras.Model"
    if not getattr(model, "compiled", False):
        return "the model is not compiled"
    if model.run_eagerly:
        return "the model is compiled with run_eagerly=True"
    if model.steps_per_execution != 1:
        return f"the model is compiled with steps_per_execution={model.steps_per_execution}"
    if getattr(model, "_distribute_strategy", None) is not None:
        return "the model was built under a tf.distribute strategy"
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
    """Train ``models`` together on ``train_data`` as ``model.fit`` trains each alone.

    ``models`` are compiled ``keras.Model`` s, built by the caller one after another;
    ``train_data`` and ``validation_data`` are ``tf.data.Dataset`` s of batches, iterated
    once per epoch for the whole group; ``callbacks`` is one list per model (each member its
    own callback objects). Returns one ``GroupOutcome`` per model, in order. Raises
    ``GroupStepError`` when the group cannot train together (see its docstring).
    """
    per_model, epochs = checked(models, callbacks, epochs, why_alone)
    loop = _GroupLoop(models, per_model, train_data, steps_per_epoch, validation_data,
                      validation_steps, epochs)
    loop.run(initial_epoch)
    return [m.outcome() for m in loop.members]


def checked(models: Sequence[Any], callbacks: Sequence[Sequence[Any]] | None, epochs: int,
            why_alone: Callable[[Any], str | None]) -> tuple[list[list[Any]], int]:
    """What every backend's ``fit_group`` checks before its loop, as ``fit`` checks one model:
    each model can join (``why_alone``, the backend's) and is compiled, one callback list per
    model. Returns the callback lists and ``epochs`` under Keras's debugging cap."""
    from keras.src.backend import config

    for index, model in enumerate(models):
        reason = why_alone(model)
        if reason is not None:
            raise GroupStepError(f"model {index} cannot train in a group: {reason}", index)
    per_model = [list(c) for c in callbacks] if callbacks is not None else [[] for _ in models]
    if len(per_model) != len(models):
        raise ValueError(
            f"callbacks must hold one list per model: {len(models)} models, "
            f"{len(per_model)} callback lists"
        )
    for model in models:
        model._assert_compile_called("fit")
    max_epochs = config.max_epochs()  # Keras's debugging cap, as fit honours it
    if max_epochs and max_epochs < epochs:
        epochs = max_epochs
    return per_model, epochs


_BATCH_HOOKS = frozenset({"on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                          "on_test_batch_end"})
_LEGACY = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}  # Keras's defaults call them


class _Member:
    """One model's side of ``fit``: its callbacks, its last logs, and whether it goes on."""

    def __init__(self, index: int, model: Any, callbacks: list[Any], epochs: int,
                 steps: int | None) -> None:
        from keras.src import callbacks as callbacks_module

        self.index = index
        self.model = model
        self.error: BaseException | None = None
        self.finished = False
        self.logs: Any = {}  # the last train step's logs; fit keeps them across epochs
        self.test_logs: Any = {}
        self.epoch_logs: dict[str, Any] = {}
        self.training_logs: dict[str, Any] | None = None
        self.callbacks = callbacks_module.CallbackList(
            callbacks, add_history=True, add_progbar=False, verbose=0, epochs=epochs,
            steps=steps, model=model,
        )
        self.batch_hooks = _BATCH_HOOKS  # set again when training begins (``overridden``)
        self.stacked = 1  # the largest stack its training steps were taken in (jax_group)

    def overridden(self) -> None:
        """Which batch hooks some callback of this member overrides.

        The others are Keras's own no-ops on every callback: ``fit`` calls them all the same,
        and the callback list hands each batch's end to a thread of its own to turn the logs
        into floats nobody reads. Skipped, every callback still sees every call it
        implements; on seed-12 they were two thirds of a JAX group's time a step.
        """
        from keras.src.utils.python_utils import is_default

        def implements(callback: Any, hook: str) -> bool:
            methods = [getattr(callback, hook, None), getattr(callback, _LEGACY.get(hook, hook), None)]
            return any(method is None or not is_default(method) for method in methods)

        self.batch_hooks = frozenset(hook for hook in _BATCH_HOOKS
                                     if any(implements(c, hook) for c in self.callbacks.callbacks))

    @property
    def live(self) -> bool:
        return self.error is None and not self.finished

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` for this member; an exception ends this member alone."""
        if self.error is not None:
            return
        try:
            fn(*args)
        except Exception as exc:  # what fit would have raised, for this model only
            self.error = exc

    def finish(self, epochs: int) -> None:
        """fit's epilogue: finalize the optimizer's variables, then on_train_end."""
        from keras.src import optimizers

        def epilogue() -> None:
            optimizer = self.model.optimizer
            if isinstance(optimizer, optimizers.Optimizer) and epochs > 0:
                optimizer.finalize_variable_values(self.model.trainable_weights)
            self.callbacks.on_train_end(logs=self.training_logs)

        self.call(epilogue)
        self.finished = True

    def outcome(self) -> GroupOutcome:
        history = self.callbacks._history
        values = history.history if history is not None else {}
        return GroupOutcome(
            history={k: [float(v) for v in vs] for k, vs in values.items()}, error=self.error,
            stacked=self.stacked,
        )


class _GroupLoop:
    """``TensorFlowTrainer.fit`` and ``evaluate``, with each step taken by the whole group.

    The loop is what Keras's ``fit`` does on every backend; what differs (the epoch
    iterators, building state, the group's step, and the ``_steps_begin`` / ``_steps_end``
    around each run of steps, where JAX moves state in and out of the models) is in the
    methods a backend overrides (``jax_group._JaxGroupLoop``).
    """

    def __init__(self, models: Sequence[Any], callbacks: list[list[Any]], train_data: Any,
                 steps_per_epoch: int | None, validation_data: Any,
                 validation_steps: int | None, epochs: int) -> None:
        self.epochs = epochs
        self.train_iterator, self.val_iterator = self._iterators(
            train_data, steps_per_epoch, validation_data, validation_steps)
        steps = self.train_iterator.num_batches
        self._build(models, train_data)
        self.members = [_Member(i, m, cbs, epochs, steps)
                        for i, (m, cbs) in enumerate(zip(models, callbacks, strict=True))]
        self.train_step, self.test_step = self._steps(models)

    # -- what a backend changes (the loop below is the same for every backend) -------------
    def _iterators(self, train_data: Any, steps_per_epoch: int | None, validation_data: Any,
                   validation_steps: int | None) -> tuple[Any, Any]:
        """fit's epoch iterator, and the one it caches for validation (reset at each use)."""
        import tensorflow as tf
        from keras.src.backend.tensorflow.trainer import TFEpochIterator
        from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

        strategy = tf.distribute.get_strategy()
        train = TFEpochIterator(
            x=train_data, steps_per_epoch=steps_per_epoch, shuffle=False,
            distribute_strategy=strategy, steps_per_execution=1,
        )
        train.reset()
        val = None
        if validation_data is not None:
            val_x, val_y, val_sample_weight = unpack_x_y_sample_weight(validation_data)
            val = TFEpochIterator(
                x=val_x, y=val_y, sample_weight=val_sample_weight,
                steps_per_epoch=validation_steps, shuffle=False,
                distribute_strategy=strategy, steps_per_execution=1,
            )
        return train, val

    def _build(self, models: Sequence[Any], train_data: Any) -> None:
        for model in models:
            _build_state(model, train_data)

    def _steps(self, models: Sequence[Any]) -> tuple[Any, Any]:
        return _GroupStep(models, "train_step"), _GroupStep(models, "test_step")

    def _steps_begin(self, m: _Member) -> None:
        """Before an epoch's (or an evaluation's) first step."""

    def _steps_end(self, m: _Member) -> None:
        """After its last step, before anything reads the model's weights or metrics."""

    def run(self, initial_epoch: int) -> None:
        for m in self.members:
            m.model.stop_training = False
        for m in self.members:
            m.call(m.callbacks.on_train_begin)
            m.overridden()
        for m in self.members:
            start = m.model._initial_epoch  # a callback may set it in on_train_begin
            if m.error is None and start and start != initial_epoch:
                raise GroupStepError(
                    f"model {m.index} asks to start at epoch {start}, its group at "
                    f"{initial_epoch}", m.index,
                )
        for epoch in range(initial_epoch, self.epochs):
            live = [m for m in self.members if m.live]
            if not live:
                break
            check_stop()  # a first Ctrl-C stops the group here, not after its last epoch
            self._epoch(epoch, live)
            for m in live:
                if m.live and m.model.stop_training:
                    m.call(self._steps_end, m)
                    m.finish(self.epochs)
        for m in self.members:
            if m.live:
                m.call(self._steps_end, m)
                m.finish(self.epochs)

    def _epoch(self, epoch: int, live: list[_Member]) -> None:
        for m in live:
            m.call(m.model.reset_metrics)
            m.call(m.callbacks.on_epoch_begin, epoch)
            m.call(self._steps_begin, m)
        stepping = [m for m in live if m.live]
        with self.train_iterator.catch_stop_iteration():
            for begin_step, end_step, iterator in self.train_iterator:
                for m in stepping:
                    if "on_train_batch_begin" in m.batch_hooks:
                        m.call(m.callbacks.on_train_batch_begin, begin_step)
                stepping = [m for m in stepping if m.live]
                if not stepping:
                    break
                outputs = self.train_step(iterator, stepping)
                for m in stepping:
                    m.logs = outputs[m.index]
                    if "on_train_batch_end" in m.batch_hooks:
                        m.call(m.callbacks.on_train_batch_end, end_step, m.logs)
                stepping = [m for m in stepping if m.live and not m.model.stop_training]
                if not stepping:
                    break
        live = [m for m in live if m.live]
        for m in live:
            m.call(self._steps_end, m)
        live = [m for m in live if m.live]
        for m in live:  # override with model metrics instead of last step logs if needed
            m.epoch_logs = {}
            m.call(lambda m=m: m.epoch_logs.update(m.model._get_metrics_result_or_logs(m.logs)))
        if self.val_iterator is not None:
            self._validate([m for m in live if m.live])
        for m in live:
            m.call(m.callbacks.on_epoch_end, epoch, m.epoch_logs)
            m.training_logs = m.epoch_logs

    def _validate(self, members: list[_Member]) -> None:
        from keras.src.utils.python_utils import pythonify_logs

        assert self.val_iterator is not None
        self.val_iterator.reset()
        for m in members:
            m.model.stop_evaluating = False
            m.call(m.callbacks.on_test_begin)
            m.call(m.model.reset_metrics)
            m.call(self._steps_begin, m)
            m.test_logs = {}
        testing = [m for m in members if m.live]
        with self.val_iterator.catch_stop_iteration():
            for begin_step, end_step, iterator in self.val_iterator:
                for m in testing:
                    if "on_test_batch_begin" in m.batch_hooks:
                        m.call(m.callbacks.on_test_batch_begin, begin_step)
                testing = [m for m in testing if m.live]
                if not testing:
                    break
                outputs = self.test_step(iterator, testing)
                for m in testing:
                    m.test_logs = outputs[m.index]
                    if "on_test_batch_end" in m.batch_hooks:
                        m.call(m.callbacks.on_test_batch_end, end_step, m.test_logs)
                testing = [m for m in testing if m.live and not m.model.stop_evaluating]
                if not testing:
                    break

        def conclude(m: _Member) -> None:
            self._steps_end(m)
            logs = pythonify_logs(m.model._get_metrics_result_or_logs(m.test_logs))
            m.callbacks.on_test_end(logs)
            m.epoch_logs.update({f"val_{name}": value for name, value in logs.items()})

        for m in members:
            m.call(conclude, m)


def release(models: Sequence[Any]) -> None:
    """Drop the traced steps ``fit_group`` kept on ``models`` (each member's, and the group's).

    A group's function is kept on its first model and holds every member: call this when the
    models will not train in a group again but some of them stay alive (a best model kept
    for saving), so the others and their graphs can be freed.
    """
    for model in models:
        vars(model).pop("_gridspec_group_steps", None)
        vars(model).pop("_gridspec_group_functions", None)
