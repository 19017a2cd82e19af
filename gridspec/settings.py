"""``SearchSettings``: every setting of ``search()``, validated once, in one frozen object.

Owns the names, defaults and checks of the settings (one validator per field, each raising
the ``name=value`` message a user sees), the "did you mean" for misspelt names, and which
settings change a trial's score (``metadata={"score": True}``): the journal's fingerprint is
derived from those marks, so a new score-affecting setting can never silently reuse stale
trials. Plain data: it imports nothing above ``errors`` and ``objective`` and never Keras.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from gridspec.errors import GridSpecError
from gridspec.naming import did_you_mean
from gridspec.space import MAX_UNCAPPED
from gridspec.strategies import CONTINUING as CONTINUING_STRATEGIES
from gridspec.strategies import STRATEGIES
from gridspec.decorators import AUTO

__all__ = [
    "AUTO",
    "DEFAULT_CACHE_BYTES",
    "EXECUTORS",
    "FUSE_AUTO",
    "MAX_UNCAPPED",
    "STRATEGY_NAMES",
    "SearchSettings",
    "check_positive",
    "cache_bytes",
]

DEFAULT_CACHE_BYTES = 1 << 30  # shared training batches kept in memory (cache_data=True)
STRATEGY_NAMES = STRATEGIES
CONTINUING = CONTINUING_STRATEGIES  # strategies that continue promoted trials (eta, min_epochs)
EXECUTORS = ("process", "ray")  # names users may pass as executor=; None picks by workers
FUSE_AUTO = "auto"




# -- the one integer check -----------------------------------------------------------------------
def check_positive(name: str, value: Any, *, allow_none: bool = False, minimum: int = 1,
                   hint: str = "") -> None:
    """``name`` must be an integer >= ``minimum`` (numpy integers count), or None if allowed."""
    if value is None and allow_none:
        return
    if not _is_int(value) or int(value) < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        extra = " or None" if allow_none else ""
        raise GridSpecError(f"{name} must be {what}{extra}{hint} (got {name}={value!r})")


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iu"


def _as_int(value: Any) -> Any:
    return int(value) if _is_int(value) else value


def cache_bytes(cache_data: bool | int) -> int:
    """``cache_data`` as a byte budget: True is the default 1 GiB, False (or 0) streams."""
    if cache_data is True:
        return DEFAULT_CACHE_BYTES
    return int(cache_data or 0)


# -- validators, one per field ---------------------------------------------------------------------
def _positive(allow_none: bool = False, minimum: int = 1, hint: str = "") -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: Any, value: Any) -> None:
        check_positive(attribute.name, value, allow_none=allow_none, minimum=minimum, hint=hint)

    return check


def _check_eta(_: Any, __: Any, value: Any) -> None:
    if value is not None:
        check_positive("eta", value, minimum=2, hint=", such as eta=3")


def _check_objective(_: Any, __: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise GridSpecError(f"objective must be a Keras history key such as 'val_loss' (got objective={value!r})")


def _check_direction(_: Any, __: Any, value: Any) -> None:
    if value not in (None, "min", "max"):
        raise GridSpecError(f"direction must be 'min' or 'max' (got direction={value!r})")


def _check_seed(_: Any, __: Any, value: Any) -> None:
    if not _is_int(value):
        raise GridSpecError(f"seed must be an integer, such as seed=0 (got seed={value!r})")


def _check_bool(_: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise GridSpecError(f"{attribute.name} must be True or False (got {attribute.name}={value!r})")


def _check_strategy(_: Any, __: Any, value: Any) -> None:
    if value not in STRATEGY_NAMES:
        raise GridSpecError(
            f"unknown strategy {value!r}; valid strategies: {', '.join(map(repr, STRATEGY_NAMES))}"
            + (did_you_mean(value, STRATEGY_NAMES) if isinstance(value, str) else "")
        )


def _check_executor(_: Any, __: Any, value: Any) -> None:
    if value is not None and value not in EXECUTORS:
        valid = ", ".join(["None (in-process for workers=1, else 'process')", *map(repr, EXECUTORS)])
        raise GridSpecError(
            f"unknown executor {value!r}; valid executors: {valid}"
            + (did_you_mean(value, EXECUTORS) if isinstance(value, str) else "")
        )


def _check_gpus(_: Any, __: Any, gpus: Any) -> None:
    if gpus is None:
        return
    if isinstance(gpus, (str, bytes)) or not isinstance(gpus, Sequence) or not list(gpus) or not all(
        _is_int(g) and g >= 0 for g in gpus
    ):
        raise GridSpecError(
            f"gpus must be a non-empty list of GPU indices, such as gpus=[0, 1] (got gpus={gpus!r})"
        )
    if len(set(gpus)) != len(list(gpus)):
        raise GridSpecError(f"gpus lists a GPU twice (got gpus={list(gpus)!r})")


DISTRIBUTE_NAMES = ("mirrored",)


def check_distribute(value: Any) -> None:
    """``distribute=``: None, ``"mirrored"``, or a ``tf.distribute.Strategy`` (duck-typed:
    no TensorFlow import to check it)."""
    if value is None or (isinstance(value, str) and value in DISTRIBUTE_NAMES):
        return
    if isinstance(value, str) or not hasattr(value, "scope"):
        raise GridSpecError(
            f"distribute must be None, 'mirrored' or a tf.distribute.Strategy "
            f"(got distribute={value!r})"
        )


def _check_distribute(_: Any, __: Any, value: Any) -> None:
    check_distribute(value)


def _check_callbacks(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise GridSpecError(
            f"callbacks must be a list of Keras callbacks, such as "
            f"callbacks=[keras.callbacks.EarlyStopping(patience=2)] (got callbacks={value!r})"
        )
    for item in value:
        if not all(hasattr(item, hook) for hook in ("set_model", "on_epoch_end")):
            raise GridSpecError(
                f"callbacks must hold Keras callbacks (keras.callbacks.Callback); "
                f"{item!r} is a {type(item).__name__}"
            )


def _check_path(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, (str, os.PathLike)) or not os.fspath(value)):
        raise GridSpecError(f"{attribute.name} must be a path (got {attribute.name}={value!r})")


def _check_cache(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, bool) or (_is_int(value) and value >= 0):
        return
    raise GridSpecError(
        f"cache_data must be True (cache up to 1 GiB), False (stream), or a number of bytes "
        f"such as cache_data=2**30 (got cache_data={value!r})"
    )


def _check_verbose(_: Any, __: Any, value: Any) -> None:
    if not (callable(value) or isinstance(value, bool) or (_is_int(value) and value >= 0)):
        raise GridSpecError(
            f"verbose must be 0 (silent), 1 (progress lines) or a function taking progress "
            f"events (got verbose={value!r})"
        )


def _check_resources(_: Any, __: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise GridSpecError(
            f"trial_resources must be a dict such as {{'num_cpus': 1, 'num_gpus': 0}} "
            f"(got trial_resources={value!r})"
        )


def _check_fuse(_: Any, __: Any, value: Any) -> None:
    if value == FUSE_AUTO or (_is_int(value) and value >= 1):
        return
    raise GridSpecError(
        f"fuse must be 'auto' (gridspec picks the group size), 1 (every trial alone, with "
        f"Keras's own fit) or a group size N >= 2 (got fuse={value!r})"
    )


def _score(**kwargs: Any) -> Any:
    """A setting that changes a trial's score: part of the journal's fingerprint."""
    return attrs.field(metadata={"score": True}, **kwargs)


@attrs.frozen(kw_only=True)
class SearchSettings:
    """What ``search()`` was asked to do, checked; ``SearchSettings.create(**kw)`` builds it."""

    # what to train (these change scores: the fingerprint is made of them)
    epochs: int = _score(default=1, converter=_as_int, validator=_positive())
    steps_per_epoch: int | None = _score(default=None, converter=_as_int, validator=_positive(allow_none=True))
    validation_steps: int | None = _score(default=None, converter=_as_int, validator=_positive(allow_none=True))
    objective: str | None = _score(default=None, validator=_check_objective)
    direction: str | None = _score(default=None, validator=_check_direction)
    seed: int = _score(default=0, converter=_as_int, validator=_check_seed)
    repeats: int = _score(default=1, converter=_as_int, validator=_positive())
    callbacks: tuple[Any, ...] = _score(default=(), validator=_check_callbacks,
                                        converter=lambda v: tuple(v) if isinstance(v, list) else v)
    # how to search
    strategy: str = attrs.field(default="grid", validator=_check_strategy)  # STRATEGY_NAMES
    max_trials: int | None = attrs.field(default=None, converter=_as_int, validator=_positive(allow_none=True))
    max_failures: int | None = attrs.field(default=None, converter=_as_int, validator=_positive(allow_none=True))
    eta: int | None = attrs.field(default=None, converter=_as_int, validator=_check_eta)
    min_epochs: int | None = attrs.field(default=None, converter=_as_int, validator=_positive(allow_none=True))
    # where trials run
    workers: int = attrs.field(default=1, converter=_as_int, validator=_positive())
    executor: str | None = attrs.field(default=None, validator=_check_executor)
    gpus: tuple[int, ...] | None = attrs.field(default=None, validator=_check_gpus)
    distribute: Any = attrs.field(default=None, validator=_check_distribute)
    address: str | None = attrs.field(default=None)
    trial_resources: Mapping[str, float] | None = attrs.field(default=None, validator=_check_resources)
    fuse: int | str = attrs.field(default=FUSE_AUTO, converter=_as_int, validator=_check_fuse)
    # data
    train: Any = attrs.field(default=AUTO)
    val: Any = attrs.field(default=AUTO)
    cache_data: bool | int = attrs.field(default=True, validator=_check_cache)
    # storage and outputs
    storage: str | None = attrs.field(default=None, validator=_check_path)
    resume: bool = attrs.field(default=True, validator=_check_bool)
    save_best: str | None = attrs.field(default=None)
    tensorboard_dir: str | None = attrs.field(default=None)
    verbose: Any = attrs.field(default=0, validator=_check_verbose)
    keras_verbose: int = attrs.field(default=0, converter=_as_int, validator=_positive(minimum=0))

    NAMES: ClassVar[tuple[str, ...]]

    def __attrs_post_init__(self) -> None:
        """Checks that need two settings: knobs that the chosen strategy or executor ignores
        are refused, never silently dropped (one rule for both)."""
        if self.strategy not in CONTINUING:
            for name in ("eta", "min_epochs"):
                if getattr(self, name) is not None:
                    raise GridSpecError(
                        f"{name}= tunes successive halving; it needs strategy='halving', 'asha' or "
                        f"'hyperband' (got strategy={self.strategy!r}, {name}={getattr(self, name)!r})"
                    )
        if self.executor != "ray":
            for name in ("address", "trial_resources"):
                if getattr(self, name) is not None:
                    raise GridSpecError(
                        f"{name}= tunes the Ray executor; it needs executor='ray' "
                        f"(got executor={self.executor!r}, {name}={getattr(self, name)!r})"
                    )
        if self.distribute is not None and self.workers > 1 and not isinstance(self.distribute, str):
            raise GridSpecError(
                f"distribute={self.distribute!r} can't be sent to worker processes; pass "
                f"distribute='mirrored' (each worker then builds its own strategy), or use workers=1"
            )

    @classmethod
    def create(cls, **settings: Any) -> SearchSettings:
        """The settings a user passed by name; a misspelt name gets "did you mean"."""
        unknown = [name for name in settings if name not in cls.NAMES]
        if unknown:
            name = unknown[0]
            raise GridSpecError(
                f"search() got an unknown setting {name}={settings[name]!r}"
                f"{did_you_mean(name, cls.NAMES) or '; the settings are ' + ', '.join(cls.NAMES)}"
            )
        if isinstance(settings.get("gpus"), list):
            settings["gpus"] = tuple(settings["gpus"])
        return cls(**settings)

    # -- derived ---------------------------------------------------------------------------
    @property
    def eta_or_default(self) -> int:
        return 3 if self.eta is None else self.eta

    @property
    def cache_bytes(self) -> int:
        return cache_bytes(self.cache_data)

    @property
    def continues(self) -> bool:
        """Whether promoted trials continue from a checkpoint (halving-type strategies)."""
        return self.strategy in CONTINUING

    def score_fields(self) -> dict[str, Any]:
        """The settings that change a trial's score, as the fingerprint records them."""
        out: dict[str, Any] = {}
        for field in attrs.fields(SearchSettings):
            if field.metadata.get("score"):
                value = getattr(self, field.name)
                out[field.name] = [type(c).__qualname__ for c in value] if field.name == "callbacks" else value
        return out

    def evolve(self, **changes: Any) -> SearchSettings:
        return attrs.evolve(self, **changes)


SearchSettings.NAMES = tuple(f.name for f in attrs.fields(SearchSettings))
