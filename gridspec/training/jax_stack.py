"""Stacked members: a JAX group's members that are one program train as one vectorised step.

Members whose step is the same program — one architecture, loss, metrics and optimizer,
differing only in values — train as one member's step under ``jax.vmap`` over their stacked
states (horizontal fusion): the group's program holds that computation once, batched over
the members, instead of once per member. Values held as state may differ freely (initial
weights, Dropout's seeds, the optimizer's learning rate, a variable); so may the
optimizer's numeric settings (momentum, betas, epsilon, weight decay), which the stacked step
takes as inputs, one value per member.

"The same program" is decided on what is computed, not on configs: each member's step is
traced to a jaxpr (``jax.make_jaxpr``, abstract, nothing runs) with the settings in which
the group's optimizers differ as inputs, and members stack when their jaxprs and constants
are equal. A custom layer's attribute that changes the computation changes the jaxpr; a
setting the optimizer branches on in Python (SGD's ``momentum != 0``) cannot be an input,
so its members stack by value.

When: batched arithmetic rounds differently from each member's own program, and training
amplifies it (an MLP on a CPU: 3.7 % on the worst member after 150 steps, the winner
unchanged), so on a CPU groups are never stacked and stay bit-identical to ``fit``; on an
accelerator, where one batched kernel replaces one small kernel per member, they are.
``GRIDSPEC_STACK`` overrides the choice: ``1`` stacks on any device (the tests do, on a
CPU), ``0`` nowhere.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs

__all__ = ["STACK_ENV", "Stacked", "StackedSlice", "Unit", "enabled", "member_state", "plan", "stack_states"]

#: ``1`` stacks members on any device, ``0`` never; unset: on accelerators only.
STACK_ENV = "GRIDSPEC_STACK"
_ON, _OFF = ("1", "on", "true", "always"), ("0", "off", "false", "never")
_STATE_OF = {
    "trainable_variables": lambda m: m.trainable_variables,
    "non_trainable_variables": lambda m: m.non_trainable_variables,
    "optimizer_variables": lambda m: m.optimizer.variables,
    "metrics_variables": lambda m: m.metrics_variables,
}


def enabled() -> bool:
    """Whether this process's JAX groups stack members (see the module docstring)."""
    mode = os.environ.get(STACK_ENV, "").strip().lower()
    if mode in _ON:
        return True
    if mode in _OFF:
        return False
    import jax

    return bool(jax.default_backend() != "cpu")


@attrs.frozen(eq=False)
class Unit:
    """Members (positions in the group's program) that take one step together.

    A member with no ``step`` is stepped by the program as without stacking (its model's own
    step, traced in the program). Otherwise ``step`` takes ``(settings, state, data)``:
    ``settings`` holds one value per member for each optimizer setting they differ in, and
    ``traced`` is the same step as the jaxpr planning traced, used for batches shaped as the
    one it was traced for (``spec``), so the program does not trace the members' Python
    again; another shape (a last, smaller batch) traces ``step``.
    """

    positions: tuple[int, ...]
    step: Callable[..., Any] | None = None
    settings: dict[str, Any] = attrs.field(factory=dict)
    traced: Callable[..., Any] | None = None
    spec: str = ""

    @property
    def stacked(self) -> bool:
        return len(self.positions) > 1

    def __call__(self, state: Any, data: Any) -> tuple[list[Any], Any]:
        """Inside the group's program: the unit's members' logs, and its new state."""
        import jax

        assert self.step is not None
        step = self.traced if self.traced is not None and _spec(data) == self.spec else self.step
        if not self.stacked:
            logs, state = step(self.settings, state, data)
            return [logs], state
        logs, state = jax.vmap(step, in_axes=(0, 0, None))(self.settings, state, data)
        return [jax.tree.map(lambda leaf, p=p: leaf[p], logs) for p in range(len(self.positions))], state


@attrs.frozen(eq=False)
class _Traced:
    """A member's step as a jaxpr: ``key`` is what two members must share to stack."""

    key: tuple[Any, ...]
    keys: tuple[str, ...]
    function: Callable[..., Any]


def plan(models: Sequence[Any], method: str, names: Sequence[str], data: Any) -> list[Unit]:
    """The units ``models`` take ``method`` (``"train_step"`` or ``"test_step"``) in, for
    batches shaped like ``data``: equal programs stacked, every other member alone."""
    if len(models) < 2:
        return [Unit((i,)) for i in range(len(models))]
    import jax

    data = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), data)
    spec = _spec(data)
    differing = _differing_settings(models) if method == "train_step" else ()
    # only members whose state has the same shapes as another's can be one program with it:
    # the others are not traced here (their trace is the group program's, as without stacking)
    shapes = [_shapes(model, names) for model in models]
    buckets: dict[Any, list[int]] = {}
    traced: dict[int, _Traced] = {}
    units: list[Unit] = []
    for position, model in enumerate(models):
        found = _signature(model, method, names, differing, data) if shapes.count(shapes[position]) > 1 else None
        if found is None:
            units.append(Unit((position,)))
        else:
            traced[position] = found
            buckets.setdefault(found.key, []).append(position)
    for positions in buckets.values():
        first = traced[positions[0]]
        members = [models[p] for p in positions]
        settings = {k: _values(members, k) for k in first.keys}
        step = _step_with(members[0], method, first.keys)
        if len(positions) == 1 or not _vmaps(first.function, settings, members, names, data):
            # alone: its traced jaxpr saves the program a trace, unless it takes settings
            # (a member alone computes them as it would without stacking)
            units.extend(Unit((p,), _step_with(models[p], method, ()), traced=traced[p].function, spec=spec)
                         if not traced[p].keys else Unit((p,)) for p in positions)
        else:
            units.append(Unit(tuple(positions), step, settings, first.function, spec))
    return sorted(units, key=lambda u: u.positions[0])


def _spec(data: Any) -> str:
    import jax

    return str(jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), data))


def stack_states(states: Sequence[Any]) -> Any:
    """Members' states, one leading axis over them (one program for every leaf)."""
    return _jitted()[0](tuple(states))


def member_state(stacked: Any, position: int) -> Any:
    """One member's state out of a stacked one."""
    import numpy as np

    return _jitted()[1](stacked, np.int32(position))


class Stacked:
    """A stacked state as a stacked unit's step left it; a member's slice is cut only when
    read (after most steps, none is), and once."""

    def __init__(self, names: Sequence[str], state: Sequence[Any]) -> None:
        self.names = tuple(names)
        self.state = state
        self._members: dict[int, dict[str, Any]] = {}

    def member(self, position: int) -> dict[str, Any]:
        if position not in self._members:
            self._members[position] = dict(zip(self.names, member_state(self.state, position), strict=True))
        return self._members[position]


class StackedSlice(dict):  # type: ignore[type-arg]
    """A stacked member's ``model._jax_state``: what ``jax_state_sync`` reads is its slice."""

    def __init__(self, stacked: Stacked, position: int) -> None:
        super().__init__((name, None) for name in stacked.names)
        self._stacked = stacked
        self._position = position

    def get(self, name: str, default: Any = None) -> Any:
        if name not in self:
            return default
        return self._stacked.member(self._position)[name]

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return self.get(name)


_JITTED: tuple[Any, Any] | None = None


def _jitted() -> tuple[Any, Any]:
    """Stacking and slicing as compiled programs: one dispatch for every leaf, and the slice's
    position an argument, so one program serves every member (slicing all members in one
    program compiled for seconds on a CPU)."""
    global _JITTED
    if _JITTED is None:
        import jax
        import jax.numpy as jnp

        def stack(states: tuple[Any, ...]) -> Any:
            return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)

        def member(stacked: Any, position: Any) -> Any:
            return jax.tree.map(lambda leaf: jax.lax.dynamic_index_in_dim(leaf, position, keepdims=False), stacked)

        _JITTED = (jax.jit(stack), jax.jit(member))
    return _JITTED


def _differing_settings(models: Sequence[Any]) -> tuple[str, ...]:
    """The numeric optimizer settings whose values differ across ``models`` (the learning
    rate aside: a float learning rate is a variable of the optimizer's state already)."""
    configs = [m.optimizer.get_config() if m.optimizer is not None else {} for m in models]
    keys = set().union(*configs) - {"name", "learning_rate"}
    differing = []
    for key in sorted(keys):
        values = [c[key] for c in configs if key in c]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric and len(set(values)) > 1:
            differing.append(key)
    return tuple(differing)


def _shapes(model: Any, names: Sequence[str]) -> tuple[Any, ...]:
    return (type(model), type(model.optimizer),
            tuple(tuple((tuple(v.shape), str(v.dtype)) for v in _STATE_OF[name](model)) for name in names))


def _signature(model: Any, method: str, names: Sequence[str], differing: Sequence[str],
               data: Any) -> _Traced | None:
    """``model``'s step traced to a jaxpr, with the optimizer settings in ``differing`` as
    inputs; ``None`` where it cannot be traced (the member then steps alone, as in a group
    without stacking). Kept on the model for its group's next membership (a member stopped,
    a rung promoted)."""
    optimizer = model.optimizer
    config = optimizer.get_config() if optimizer is not None and differing else {}
    own = tuple(k for k in differing if k in config and getattr(optimizer, k, None) == config[k])
    key = (method, own, _spec(data), id(optimizer), id(model._compile_loss), id(model._compile_metrics))
    kept = vars(model).setdefault("_gridspec_stack_signatures", {})  # past Keras's attr tracking
    if key not in kept:
        if len(kept) >= 4:  # a model compiled again, or another batch shape: the old ones go
            kept.clear()
        kept[key] = _trace(model, method, names, own, data)
    return kept[key]  # type: ignore[no-any-return]


def _trace(model: Any, method: str, names: Sequence[str], own: tuple[str, ...], data: Any) -> _Traced | None:
    """The jaxpr, its constants, and the step as a function of it. Members whose jaxprs print
    alike (variables are named by position) and whose constants are equal compute the same."""
    import jax
    import numpy as np
    from jax.extend.core import jaxpr_as_fun

    state = tuple([jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in _STATE_OF[name](model)]
                  for name in names)
    for keys in (own, ()) if own else ((),):
        settings = {k: jax.ShapeDtypeStruct((), np.float32) for k in keys}
        try:
            closed, shapes = jax.make_jaxpr(_step_with(model, method, keys), return_shape=True)(settings, state, data)
        except Exception:  # noqa: BLE001 - e.g. a setting the optimizer branches on in Python
            continue
        constants = tuple((np.shape(c), str(np.asarray(c).dtype), hashlib.sha1(np.asarray(c).tobytes()).hexdigest())
                          for c in closed.consts)
        run, out_tree = jaxpr_as_fun(closed), jax.tree.structure(shapes)

        def function(settings: Any, state: Any, data: Any, run: Any = run, out_tree: Any = out_tree) -> Any:
            return jax.tree.unflatten(out_tree, run(*jax.tree.leaves((settings, state, data))))

        key = (keys, str(closed.jaxpr), constants, str(jax.tree.structure((settings, state, data))), str(out_tree))
        return _Traced(key, keys, function)
    return None


def _step_with(model: Any, method: str, keys: Sequence[str]) -> Callable[..., Any]:
    """``model``'s step taking ``(settings, state, data)``: each optimizer setting in ``keys``
    is read from ``settings`` while the step is traced."""
    step = getattr(model, method)
    optimizer = model.optimizer

    def stepped(settings: dict[str, Any], state: Any, data: Any) -> Any:
        saved = {k: getattr(optimizer, k) for k in keys}
        try:
            for k in keys:
                setattr(optimizer, k, settings[k])
            return step(state, data)
        finally:
            for k, v in saved.items():
                setattr(optimizer, k, v)

    return stepped


def _values(models: Sequence[Any], key: str) -> Any:
    import numpy as np

    return np.asarray([float(getattr(m.optimizer, key)) for m in models], dtype=np.float32)


def _vmaps(step: Callable[..., Any], settings: dict[str, Any], models: Sequence[Any],
           names: Sequence[str], data: Any) -> bool:
    """Whether ``step`` batches under ``jax.vmap`` over the members' stacked states."""
    import jax

    n = len(models)
    state = tuple([jax.ShapeDtypeStruct((n, *tuple(v.shape)), v.dtype) for v in _STATE_OF[name](models[0])]
                  for name in names)
    try:
        jax.eval_shape(jax.vmap(step, in_axes=(0, 0, None)), settings, state, data)
    except Exception:  # noqa: BLE001 - a step vmap can't batch: its members step alone
        return False
    return True
