"""The group's traced step on TensorFlow: one ``tf.function`` per batch that runs each member's
own ``train_step`` (or ``test_step``), each wrapped exactly as ``make_train_function`` wraps
it, and kept on the models as ``fit`` keeps ``model.train_function``. ``fused._GroupLoop``
calls it; an exception inside it is a ``GroupStepError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridspec.training.fused import _Member


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
        except Exception as exc:
            raise group_step_error(exc, key, self.method)
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


def group_step_error(exc: Exception, key: tuple[int, ...], method: str) -> GroupStepError:
    """What a failing group step becomes, on either backend: naming the member whose step
    raised while the group's program was traced (``key`` maps positions to members), else
    the group as a whole."""
    if isinstance(exc, _MemberTraceError):
        cause, member = exc.error, key[exc.position]
        error = GroupStepError(f"model {member}'s {method} raised while the group's step was "
                               f"traced: {type(cause).__name__}: {cause}", member)
    else:
        cause, error = exc, GroupStepError(f"the group's {method} failed: {type(exc).__name__}: {exc}")
    error.__cause__ = cause  # as ``raise error from cause``
    return error


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
