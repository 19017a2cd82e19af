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
stop; the group's step is then rebuilt without it (see ``_GroupStep``). A member
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

__all__ = [
    "GroupOutcome",
    "GroupStepError",
    "fit_group",
    "fused_supported",
    "release",
    "why_alone",
]


class GroupStepError(RuntimeError):
    """The group's traced step failed (or the group could not be formed).

    ``member`` is the index of the model it is known to come from (an exception raised while
    that member's step was traced, or a model that cannot join a group), else ``None``. The
    group's models may be part-trained and their callbacks part-called: to find the culprit,
    rebuild the models and train each alone with ``model.fit``.
    """

    def __init__(self, message: str, member: int | None = None) -> None:
        super().__init__(message)
        self.member = member


@attrs.frozen
class GroupOutcome:
    """One member's result: its ``History.history`` as ``fit`` returns it, or its error.

    ``history`` holds every epoch the member completed (from ``initial_epoch`` on), one float
    per epoch per key. ``error`` is the exception raised for this member alone (by one of its
    callbacks, or while its logs were read); its history then stops at the last epoch it
    completed.
    """

    history: dict[str, list[float]]
    error: BaseException | None = None


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
    loop = _GroupLoop(models, per_model, train_data, steps_per_epoch, validation_data,
                      validation_steps, epochs)
    loop.run(initial_epoch)
    return [m.outcome() for m in loop.members]


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
            history={k: [float(v) for v in vs] for k, vs in values.items()}, error=self.error
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
                    m.call(m.callbacks.on_train_batch_begin, begin_step)
                stepping = [m for m in stepping if m.live]
                if not stepping:
                    break
                outputs = self.train_step(iterator, stepping)
                for m in stepping:
                    m.logs = outputs[m.index]
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
                    m.call(m.callbacks.on_test_batch_begin, begin_step)
                testing = [m for m in testing if m.live]
                if not testing:
                    break
                outputs = self.test_step(iterator, testing)
                for m in testing:
                    m.test_logs = outputs[m.index]
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


def _build_state(model: Any, train_data: Any) -> None:
    """Create the model's metric and optimizer variables before the group's step is traced.

    ``fit`` on the TensorFlow backend creates them inside its first trace; a ``tf.function``
    that creates variables on its first call is traced a second time, so for a group that
    doubles the start-up fusion is there to save. ``_symbolic_build`` is what ``fit`` itself
    runs under a distribution strategy; it creates the same variables (zeros, no random draw)
    from the dataset's element spec. A model it cannot build builds in the trace, as alone.
    """
    try:
        model._symbolic_build(data_batch=train_data.element_spec)
    except Exception:  # noqa: BLE001 - fit does not run this step: the trace builds instead
        pass


class _GroupStep:
    """One ``tf.function`` that takes a batch and runs each active member's step on it.

    Each member's step is wrapped as ``TensorFlowTrainer._make_function`` wraps it (a
    ``tf.function`` with the model's ``jit_compile``, no autograph, the distribution
    strategy's ``run`` and ``reduce_per_replica``, optionals converted to ``None``), so the
    group's graph holds the computation ``fit`` traces for each model alone.

    Members that have stopped are left out of a new group function. It is traced again, but
    each member's own step keeps its traced graph, so only the group's thin outer function is
    rebuilt; membership changes only where a member stops (at most once per epoch for
    ``EarlyStopping``). A mask read by one function (``tf.cond`` around each step) was
    measured and refused: inside a ``cond`` branch TensorFlow does not apply its oneDNN
    fusions, so the members' results drift from ``fit``'s by float32 rounding (2e-7 relative
    on seed-12), and the group traced twice as slowly.

    The group function is kept on its first model, as ``fit`` keeps ``model.train_function``:
    a later ``fit_group`` with the same models in the same order (and the same steps, i.e.
    not compiled again) reuses it, traced and optimized.
    """

    def __init__(self, models: Sequence[Any], method: str) -> None:
        self.models = list(models)
        self.method = method
        self._key: tuple[int, ...] = ()
        self._function: Any = None

    def __call__(self, iterator: Any, members: list[_Member]) -> dict[int, Any]:
        import tensorflow as tf

        key = tuple(m.index for m in members)
        if self._function is None or key != self._key:
            self._function = self._make([self.models[i] for i in key])
            self._key = key
        try:
            outputs = self._function(iterator)
        except tf.errors.OutOfRangeError:  # the data ran out: fit's epoch iterator handles it
            raise
        except _MemberTraceError as exc:
            cause, member = exc.error, key[exc.position]
            raise GroupStepError(
                f"model {member}'s {self.method} raised while the group's step was "
                f"traced: {type(cause).__name__}: {cause}", member,
            ) from cause
        except Exception as exc:
            raise GroupStepError(
                f"the group's {self.method} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return dict(zip(key, outputs, strict=True))

    def _make(self, models: list[Any]) -> Any:
        import tensorflow as tf

        steps = [_member_step(model, self.method) for model in models]
        kept = vars(models[0]).setdefault("_gridspec_group_functions", {})
        group = kept.get(self.method)
        if group is not None and _same(group[0], models) and _same(group[1], steps):
            return group[2]

        @tf.autograph.experimental.do_not_convert
        def group_step(iterator: Any) -> list[Any]:
            data = iterator.get_next()
            outputs = []
            for position, step in enumerate(steps):
                try:
                    outputs.append(step(data))
                except Exception as exc:  # raised while tracing: name the member
                    raise _MemberTraceError(position, exc) from exc
            return outputs

        function = tf.function(group_step, reduce_retracing=True)
        kept[self.method] = (models, steps, function)  # the latest only: the old graph goes
        return function


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class _MemberTraceError(Exception):
    """Carries a member's exception out of the trace (tf.function drops ``__cause__``)."""

    def __init__(self, position: int, error: Exception) -> None:
        super().__init__(position, error)
        self.position = position
        self.error = error


def _member_step(model: Any, method: str) -> Any:
    """``model``'s step as ``TensorFlowTrainer._make_function`` wraps it for one batch.

    Kept on the model, as ``fit`` keeps ``model.train_function``: a later ``fit_group`` with
    the same model (a promoted halving member continuing its weights, in a smaller group)
    reuses the traced step and pays only for the group's thin outer function. A model that
    was compiled again (another optimizer, loss or metrics) gets a new one.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow.trainer import reduce_per_replica

    compiled_with = (model.optimizer, model._compile_loss, model._compile_metrics,
                     model.jit_compile, model.distribute_strategy)
    cache = vars(model).setdefault("_gridspec_group_steps", {})  # past Keras's attr tracking
    kept = cache.get(method)
    if kept is not None and all(a is b for a, b in zip(kept[0], compiled_with, strict=True)):
        return kept[1]
    step_function = getattr(model, method)

    @tf.autograph.experimental.do_not_convert
    def one_step_on_data(data: Any) -> Any:
        outputs = model.distribute_strategy.run(step_function, args=(data,))
        return reduce_per_replica(outputs, model.distribute_strategy, reduction="auto")

    traced = tf.function(one_step_on_data, reduce_retracing=True, jit_compile=model.jit_compile)
    wrapped = model._autoconvert_optionals(traced)
    cache[method] = (compiled_with, wrapped)
    return wrapped
