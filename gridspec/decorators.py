"""``@grid``, ``@train_data`` and ``@val_data``: validate what the user wrote and record it.

Decorators record, they don't run: nothing trains and nothing global changes at import.
``@grid`` returns a ``GridFunction`` — the user's function, still callable, with ``.space``
and ``.search`` — and ``@train_data`` / ``@val_data`` return the factory itself with a
``FactorySpec`` attached for the registry's scan to find. Everything knowable at decoration
time (axis types, empty axes, parameters against the signature, double decoration) is
checked here, once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import attrs

from gridspec.errors import GridError
from gridspec.naming import did_you_mean
from gridspec.space import Space
from gridspec.union import Predicate, UnionSpace, part_label
from gridspec.values import a_kind


class _Auto:
    """"Pick the module's one factory of this kind": the default of ``train=`` / ``val=``."""

    def __repr__(self) -> str:
        return "AUTO"

    def __reduce__(self) -> str:
        return "AUTO"  # the same marker after a trip through pickle


AUTO: Any = _Auto()

if TYPE_CHECKING:
    from gridspec.result import SearchResult

__all__ = ["FactorySpec", "GridFunction", "accepted_params", "did_you_mean", "factory_label", "grid", "train_data", "val_data"]

F = TypeVar("F", bound=Callable[..., Any])
FactoryKind = Literal["train", "val"]
FACTORY_ATTR = "__gridspec_factory__"


def accepted_params(fn: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """The keyword names ``fn`` accepts, and whether it takes ``**kwargs``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: accept nothing named
        return frozenset(), False
    names = frozenset(
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    var_kw = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    return names, var_kw


def required_params(fn: Callable[..., Any]) -> list[str]:
    """Parameters with no default, which gridspec must be able to supply."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
    ]


def factory_label(fn: Callable[..., Any], kind: str) -> str:
    """How messages name a data factory: ``'train' (train_data)``."""
    spec = factory_spec(fn)
    name = spec.name if spec is not None else getattr(fn, "__name__", repr(fn))
    return f"{name!r} ({kind}_data)"


def select(fn: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that ``fn`` declares (all of them if it takes ``**kwargs``)."""
    names, var_kw = accepted_params(fn)
    return dict(params) if var_kw else {k: v for k, v in params.items() if k in names}


class GridFunction:
    """A model function decorated with ``@grid``: still callable, plus ``.space`` and ``.search``."""

    __name__: str
    __qualname__: str

    def __init__(self, fn: Callable[..., Any], space: Space | UnionSpace) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.space = space

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        # Plain functions bind as methods; a grid is a module-level function, so don't.
        return self

    def __repr__(self) -> str:
        return f"<grid {self.__module__}.{self.__qualname__}: {self.space.describe(count=False)}>"

    @property
    def target(self) -> str:
        """``module:function``, how worker processes find this grid again."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def search(
        self,
        *,
        epochs: int = 1,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        objective: str | None = None,
        direction: Literal["min", "max"] | None = None,
        strategy: Literal["grid", "random", "halving", "asha", "hyperband"] = "grid",
        max_trials: int | None = None,
        max_failures: int | None = None,
        eta: int | None = None,
        min_epochs: int | None = None,
        workers: int = 1,
        executor: Literal["process", "ray"] | None = None,
        gpus: Sequence[int] | None = None,
        distribute: Any = None,
        address: str | None = None,
        trial_resources: Mapping[str, float] | None = None,
        fuse: int | Literal["auto"] = "auto",
        seed: int = 0,
        repeats: int = 1,
        callbacks: Sequence[Any] = (),
        train: Any = AUTO,
        val: Any = AUTO,
        cache_data: bool | int = True,
        storage: str | None = None,
        resume: bool = True,
        save_best: str | None = None,
        tensorboard_dir: str | None = None,
        verbose: int | bool | Callable[[Any], None] = 0,
        keras_verbose: int = 0,
    ) -> SearchResult:
        """Train the combinations on the same data and compare them on ``objective``.

        What to train: ``epochs``, ``steps_per_epoch`` (required for generators),
        ``validation_steps``, ``objective`` (default ``val_loss``, or ``loss`` without
        validation data) and ``direction`` (inferred from the name), ``seed``, ``repeats``,
        ``callbacks``. How to search: ``strategy`` (``eta``/``min_epochs`` for halving),
        ``max_trials``, ``max_failures``. Where trials run: ``workers``, ``executor``,
        ``gpus``, ``distribute``, ``address``/``trial_resources`` (Ray), ``fuse`` (trials
        trained together; 1 = Keras ``fit`` alone). Data: ``train``/``val`` (a factory, its
        name, or None), ``cache_data``. Storage and outputs: ``storage``, ``resume``,
        ``save_best``, ``tensorboard_dir``, ``verbose``. See docs/search.md.
        """
        from gridspec.engine import run_search
        from gridspec.settings import SearchSettings

        settings = {k: v for k, v in locals().items() if k not in ("self", "run_search", "SearchSettings")}
        return run_search(self, SearchSettings.create(**settings))


def _check_model_function(fn: Callable[..., Any], space: Space | UnionSpace) -> None:
    if not callable(fn):
        raise GridError(f"@grid must decorate a function that builds a model (got {fn!r})")
    if isinstance(fn, GridFunction):
        raise GridError(
            f"{fn.__qualname__}() is already decorated with @grid; merge the axes into one "
            f"@grid(...) call"
        )
    if hasattr(fn, FACTORY_ATTR):
        raise GridError(
            f"{fn.__qualname__}() is a data factory; @grid decorates the function that builds the model"
        )
    for name in required_params(fn):
        if name not in space.names:
            raise GridError(
                f"{fn.__qualname__}() has a parameter {name!r} with no default that is not a grid "
                f"axis; add an axis such as {name}=[...] to @grid or give it a default value"
                + did_you_mean(name, space.names)
            )
        for number, part in enumerate(space.parts, start=1):
            if name not in part.names:
                raise GridError(
                    f"{fn.__qualname__}() has a parameter {name!r} with no default, and "
                    f"{part_label(number, part)} has no axis {name!r}: an axis a sub-grid leaves out "
                    f"is not passed, so the function's default applies; give {name} a default value "
                    f"or add {name}=[...] to that sub-grid"
                )


def _sub_grid(number: int, axes: Any) -> Space:
    """One dict of a ``@grid([...])`` list, checked like ``@grid(**axes)``, named in messages."""
    if not isinstance(axes, Mapping):
        raise GridError(
            f"@grid([...]) takes a list of dicts of axes, such as @grid([dict(opt=['adam'], "
            f"lr=[0.001]), dict(opt=['sgd'], lr=[0.01], momentum=[0.0, 0.9])]) (item {number} is "
            f"{a_kind(axes)}: {axes!r})"
        )
    if not axes:
        raise GridError(f"@grid([...]): sub-grid {number} has no axes; give it at least one, such as dict(lr=[0.001])")
    if "where" in axes:
        raise GridError(
            f"@grid([...]): sub-grid {number} has an axis named 'where', which is reserved for the "
            f"predicate: write @grid([...], where=lambda p: ...) and give the axis another name"
        )
    try:
        return Space.from_dict(axes)
    except GridError as exc:
        raise GridError(f"@grid([...]) sub-grid {number}: {exc}") from None


def _space(args: tuple[Any, ...], axes: dict[str, Any], where: Any) -> Space | UnionSpace:
    """What ``@grid`` was given, as a space: one product, or a union and/or a filter."""
    if args and (callable(args[0]) or not isinstance(args[0], (list, tuple, Mapping))):
        what = f"{args[0].__qualname__}()" if callable(args[0]) else repr(args[0])
        raise GridError(
            f"@grid takes its axes as keywords, such as @grid(lr=[0.001, 0.0005]), or a list of "
            f"dicts of axes, such as @grid([dict(opt=['adam']), dict(opt=['sgd'], momentum=[0.9])]) "
            f"(got a positional argument: {what})"
        )
    if args and (len(args) > 1 or axes):
        raise GridError(
            "@grid takes either its axes as keywords or one list of dicts of axes, not both; "
            "put every axis in the dicts, such as @grid([dict(opt=['adam'], lr=[0.001]), "
            "dict(opt=['sgd'], lr=[0.01])])"
        )
    if where is not None and not callable(where):
        raise GridError(
            f"@grid(where=...) takes a predicate, a function of a combination's dict that returns "
            f"True to keep it, such as where=lambda p: p['opt'] == 'sgd' or p['momentum'] == 0.0 "
            f"(got {a_kind(where)}); 'where' is reserved and can't name an axis"
        )
    if not args:
        parts = [Space.from_dict(axes)]
    else:
        grids = [args[0]] if isinstance(args[0], Mapping) else list(args[0])
        if not grids:
            raise GridError("@grid([]) needs at least one grid, such as @grid([dict(lr=[0.001, 0.0005])])")
        parts = [_sub_grid(number, axes) for number, axes in enumerate(grids, start=1)]
    if len(parts) == 1 and where is None:
        return parts[0]
    return UnionSpace(parts, where)


def grid(*args: Any, where: Predicate | None = None, **axes: Any) -> Callable[[Callable[..., Any]], GridFunction]:
    """Declare a grid: each keyword is one axis, its value the list of candidates.

    The order of the keywords is the order of the combinations: ``itertools.product`` over
    the axes, the last axis varying fastest. A list of dicts instead (scikit-learn's
    ``param_grid`` form) is a union of such products, in order; an axis a dict leaves out is
    not passed, so the function's default applies. ``where=`` keeps the combinations for
    which it returns True. See docs/grid.md.
    """
    space = _space(args, axes, where)

    def decorate(fn: Callable[..., Any]) -> GridFunction:
        _check_model_function(fn, space)
        return GridFunction(fn, space)

    return decorate


@attrs.frozen
class FactorySpec:
    """A registered data factory: what kind, under what name, and which axes it takes."""

    kind: FactoryKind
    name: str
    fn: Callable[..., Any] = attrs.field(eq=False)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind}_data)"


def _register(kind: FactoryKind, fn: Callable[..., Any], name: str | None) -> Any:
    if not callable(fn):
        raise GridError(f"@{kind}_data must decorate a function that returns data (got {fn!r})")
    if isinstance(fn, GridFunction):
        raise GridError(
            f"{fn.__qualname__}() is a @grid model function; @{kind}_data decorates a data factory"
        )
    existing = getattr(fn, FACTORY_ATTR, None)
    if existing is not None:
        raise GridError(
            f"{getattr(fn, '__qualname__', fn)}() is already registered as {existing.label}; "
            f"to use the same data for both, write a second factory that calls it"
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise GridError(f"@{kind}_data(name=...) must be a non-empty string (got {name!r})")
    setattr(fn, FACTORY_ATTR, FactorySpec(kind, name or fn.__name__, fn))
    return fn


@overload
def train_data(fn: F, /) -> F: ...
@overload
def train_data(*, name: str | None = None) -> Callable[[F], F]: ...
def train_data(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Register the factory of training batches; bare or as ``@train_data(name="small")``."""
    if fn is None:
        return lambda f: _register("train", f, name)
    return _register("train", fn, name)


@overload
def val_data(fn: F, /) -> F: ...
@overload
def val_data(*, name: str | None = None) -> Callable[[F], F]: ...
def val_data(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Register the factory of validation batches (optional); same forms as ``train_data``."""
    if fn is None:
        return lambda f: _register("val", f, name)
    return _register("val", fn, name)


def factory_spec(fn: Any) -> FactorySpec | None:
    spec = getattr(fn, FACTORY_ATTR, None)
    return spec if isinstance(spec, FactorySpec) else None
