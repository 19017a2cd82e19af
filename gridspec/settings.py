"""``SearchSettings``: every setting of ``search()``, written once, validated once.

Each field is the whole of a setting: its name and default, its one validator (raising the
message a user sees, about that setting), whether it changes a trial's score
(``metadata={"score": True}``: the journal's fingerprint is derived from those marks, so a
new score-affecting setting can never silently reuse stale trials) and how ``gridspec run``
takes it (``metadata={"cli": (Flag(...),)}``: the flag, its help line and its parser, from
``gridspec.flags``; the command's options and their mapping onto the settings are derived
from these). Also the
"did you mean" for misspelt names, and the names of the strategies, executors and
``AUTO``. Plain data: it imports only ``errors``, ``flags``, ``naming`` and ``objective``,
never Keras.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from gridspec.errors import GridSpecError, Named
from gridspec.flags import FLAG_GROUPS, Flag, gpu_list, integer, integer_or_text, number, train_name, val_name
from gridspec.naming import did_you_mean
from gridspec.objective import DIRECTIONS
from gridspec.space import MAX_UNCAPPED

__all__ = [
    "AUTO",
    "CONTINUING",
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
STRATEGY_NAMES = ("grid", "random", "halving", "asha", "hyperband")
# The strategies that spend epoch budgets: they take eta and min_epochs, and their promoted
# trials continue from checkpoints (the engine keeps a folder for them).
CONTINUING = ("halving", "asha", "hyperband")
EXECUTORS = ("process", "ray")  # names users may pass as executor=; None picks by workers
FUSE_AUTO = "auto"
DISTRIBUTE_NAMES = ("mirrored",)


class _Auto:
    """"Pick the module's one factory of this kind": the default of ``train=`` / ``val=``."""

    def __repr__(self) -> str:
        return "AUTO"

    def __reduce__(self) -> str:
        return "AUTO"  # the same marker after a trip through pickle


AUTO: Any = _Auto()
_WHAT, _HOW, _WHERE, _STORAGE, _OUTPUT = FLAG_GROUPS


def _cli(*flags: Flag, **kwargs: Any) -> Any:
    metadata: dict[str, Any] = {"cli": flags}
    if kwargs.pop("score", False):
        metadata["score"] = True
    return attrs.field(metadata=metadata, **kwargs)


def _score(**kwargs: Any) -> Any:
    """A setting that changes a trial's score: part of the journal's fingerprint."""
    return attrs.field(metadata={"score": True}, **kwargs)


# -- the one integer check -----------------------------------------------------------------------
def check_positive(name: str, value: Any, *, allow_none: bool = False, minimum: int = 1,
                   example: Any = None) -> None:
    """``name`` must be an integer >= ``minimum`` (numpy integers count), or None if allowed."""
    if value is None and allow_none:
        return
    if not _is_int(value) or int(value) < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        extra = " or None" if allow_none else ""
        such = (", such as ", Named(name, example)) if example is not None else ()
        raise GridSpecError(Named(name), f" must be {what}{extra}", *such, " (got ", Named(name, value), ")",
                            setting=name)


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
def _positive(allow_none: bool = False, minimum: int = 1, example: Any = None) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: Any, value: Any) -> None:
        check_positive(attribute.name, value, allow_none=allow_none, minimum=minimum, example=example)

    return check


def _check_eta(_: Any, __: Any, value: Any) -> None:
    if value is not None:
        check_positive("eta", value, minimum=2, example=3)


def _check_objective(_: Any, __: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise GridSpecError("objective must be a Keras history key such as 'val_loss' (got ",
                            Named("objective", value), ")", setting="objective")


def _check_direction(_: Any, __: Any, value: Any) -> None:
    if value is not None and value not in DIRECTIONS:
        raise GridSpecError("direction must be 'min' or 'max' (got ", Named("direction", value), ")",
                            setting="direction")


def _check_seed(_: Any, __: Any, value: Any) -> None:
    if not _is_int(value):
        raise GridSpecError("seed must be an integer, such as ", Named("seed", 0), " (got ", Named("seed", value), ")",
                            setting="seed")


def _check_bool(_: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        name = attribute.name
        raise GridSpecError(f"{name} must be True or False (got ", Named(name, value), ")", setting=name)


def _unknown(name: str, value: Any, valid: str, options: Iterable[str]) -> GridSpecError:
    return GridSpecError(f"unknown {name} {value!r}; valid {name}s: {valid}"
                         + (did_you_mean(value, options) if isinstance(value, str) else ""), setting=name)


def _check_strategy(_: Any, __: Any, value: Any) -> None:
    if value not in STRATEGY_NAMES:
        raise _unknown("strategy", value, ", ".join(map(repr, STRATEGY_NAMES)), STRATEGY_NAMES)


def _check_executor(_: Any, __: Any, value: Any) -> None:
    if value is not None and value not in EXECUTORS:
        valid = ", ".join(["None (in-process for workers=1, else 'process')", *map(repr, EXECUTORS)])
        raise _unknown("executor", value, valid, EXECUTORS)


def _check_gpus(_: Any, __: Any, gpus: Any) -> None:
    if gpus is None:
        return
    if isinstance(gpus, (str, bytes)) or not isinstance(gpus, Sequence) or not list(gpus) or not all(
        _is_int(g) and g >= 0 for g in gpus
    ):
        raise GridSpecError("gpus must be a non-empty list of GPU indices, such as ",
                            Named("gpus", [0, 1], cli="--gpus 0,1"), " (got ", Named("gpus", gpus), ")",
                            setting="gpus")
    if len(set(gpus)) != len(list(gpus)):
        raise GridSpecError("gpus lists a GPU twice (got ", Named("gpus", list(gpus)), ")", setting="gpus")


def check_distribute(value: Any) -> None:
    """``distribute=``: None, ``"mirrored"``, or a ``tf.distribute.Strategy`` (duck-typed:
    no TensorFlow import to check it)."""
    if value is None or (isinstance(value, str) and value in DISTRIBUTE_NAMES):
        return
    if isinstance(value, str) or not hasattr(value, "scope"):
        raise GridSpecError("distribute must be None, 'mirrored' or a tf.distribute.Strategy (got ",
                            Named("distribute", value), ")", setting="distribute")


def check_portable_distribute(value: Any) -> None:
    """A ``tf.distribute.Strategy`` object lives in this process: worker processes can't get it."""
    if value is not None and not isinstance(value, str):
        raise GridSpecError(
            f"distribute={value!r} can't be sent to worker processes; pass "
            f"distribute='mirrored' (each worker then builds its own strategy), or use workers=1",
            setting="distribute")


def _check_distribute(_: Any, __: Any, value: Any) -> None:
    check_distribute(value)


def _check_callbacks(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise GridSpecError(
            f"callbacks must be a list of Keras callbacks, such as "
            f"callbacks=[keras.callbacks.EarlyStopping(patience=2)] (got callbacks={value!r})", setting="callbacks"
        )
    for item in value:
        if not all(hasattr(item, hook) for hook in ("set_model", "on_epoch_end")):
            raise GridSpecError(
                f"callbacks must hold Keras callbacks (keras.callbacks.Callback); "
                f"{item!r} is a {type(item).__name__}", setting="callbacks"
            )


def _check_path(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, (str, os.PathLike)) or not os.fspath(value)):
        name = attribute.name
        raise GridSpecError(f"{name} must be a path (got ", Named(name, value), ")", setting=name)


def _check_cache(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, bool) or (_is_int(value) and value >= 0):
        return
    raise GridSpecError(
        f"cache_data must be True (cache up to 1 GiB), False (stream), or a number of bytes "
        f"such as cache_data=2**30 (got cache_data={value!r})", setting="cache_data"
    )


def _check_verbose(_: Any, __: Any, value: Any) -> None:
    if not (callable(value) or isinstance(value, bool) or (_is_int(value) and value >= 0)):
        raise GridSpecError(
            f"verbose must be 0 (silent), 1 (progress lines) or a function taking progress "
            f"events (got verbose={value!r})", setting="verbose"
        )


def _check_resources(_: Any, __: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise GridSpecError(
            f"trial_resources must be a dict such as {{'num_cpus': 1, 'num_gpus': 0}} "
            f"(got trial_resources={value!r})", setting="trial_resources"
        )


def _check_fuse(_: Any, __: Any, value: Any) -> None:
    if value == FUSE_AUTO or (_is_int(value) and value >= 1):
        return
    raise GridSpecError(
        Named("fuse"), " must be ", Named("fuse", FUSE_AUTO, python="'auto'", cli="auto"),
        " (gridspec picks the group size), 1 (every trial alone, with Keras's own fit) or a group "
        "size N >= 2 (got ", Named("fuse", value), ")", setting="fuse"
    )


def _as_flags(name: str, value: Any) -> str | None:
    """A dict setting as the flags that fill it (``--trial-cpus 2``); None for other settings."""
    flags = [flag for field in attrs.fields(SearchSettings) if field.name == name
             for flag in field.metadata.get("cli", ()) if flag.key is not None]
    if not flags or not isinstance(value, Mapping):
        return None
    return " ".join(f"{flag.flag} {value[flag.key]:g}" for flag in flags if flag.key in value)


@attrs.frozen(kw_only=True)
class SearchSettings:
    """What ``search()`` was asked to do, checked; ``SearchSettings.create(**kw)`` builds it.

    The fields are in the order ``gridspec run --help`` lists their flags, group by group."""

    # data, and what to train (the marked ones change scores: the fingerprint is made of them)
    train: Any = _cli(Flag("--train", "name of the @train_data factory to use", _WHAT, "NAME",
                           to_setting=train_name), default=AUTO)
    val: Any = _cli(Flag("--val", "name of the @val_data factory, or none", _WHAT, "NAME", to_setting=val_name),
                    default=AUTO)
    epochs: int = _cli(Flag("--epochs", "epochs per trial (default 1)", _WHAT, "N", integer),
                       score=True, default=1, converter=_as_int, validator=_positive())
    steps_per_epoch: int | None = _cli(Flag("--steps-per-epoch", "training batches per epoch", _WHAT, "N", integer),
                                       score=True, default=None, converter=_as_int,
                                       validator=_positive(allow_none=True))
    validation_steps: int | None = _cli(Flag("--validation-steps", "validation batches per epoch", _WHAT, "N",
                                             integer),
                                        score=True, default=None, converter=_as_int,
                                        validator=_positive(allow_none=True))
    seed: int = _cli(Flag("--seed", "random state every trial starts from", _WHAT, "N", integer),
                     score=True, default=0, converter=_as_int, validator=_check_seed)
    repeats: int = _cli(Flag("--repeats", "train each combination N times", _WHAT, "N", integer),
                        score=True, default=1, converter=_as_int, validator=_positive())
    callbacks: tuple[Any, ...] = _score(default=(), validator=_check_callbacks,
                                        converter=lambda v: tuple(v) if isinstance(v, list) else v)
    cache_data: bool | int = attrs.field(default=True, validator=_check_cache)
    keras_verbose: int = attrs.field(default=0, converter=_as_int, validator=_positive(minimum=0))
    # how to search
    objective: str | None = _cli(Flag("--objective", "Keras history key to compare (default val_loss, or loss)",
                                      _HOW, "KEY"),
                                 score=True, default=None, validator=_check_objective)
    direction: str | None = _cli(Flag("--direction", "min or max (default from the name: accuracy-, AUC-, "
                                      "IoU-like... are max)", _HOW, choices=("min", "max")),
                                 score=True, default=None, validator=_check_direction)
    strategy: str = _cli(Flag("--strategy", "grid (default), random, halving, asha or hyperband", _HOW, "NAME"),
                         default="grid", validator=_check_strategy)
    max_trials: int | None = _cli(Flag("--max-trials", "train at most N combinations", _HOW, "N", integer),
                                  default=None, converter=_as_int, validator=_positive(allow_none=True))
    eta: int | None = _cli(Flag("--eta", "halving, asha, hyperband: promote the best 1/ETA of each rung to ETA "
                                "times more epochs (default 3)", _HOW, "N", integer),
                           default=None, converter=_as_int, validator=_check_eta)
    min_epochs: int | None = _cli(Flag("--min-epochs", "halving, asha: epochs of the first rung; hyperband: of "
                                       "its smallest first rung (default 1)", _HOW, "N", integer),
                                  default=None, converter=_as_int, validator=_positive(allow_none=True))
    max_failures: int | None = _cli(Flag("--max-failures", "stop after N failed trials in a row", _HOW, "N",
                                         integer),
                                    default=None, converter=_as_int, validator=_positive(allow_none=True))
    # where trials run
    workers: int = _cli(Flag("--workers", "trials at once, each in its own worker process (default 1: "
                             "in-process)", _WHERE, "N", integer),
                        default=1, converter=_as_int, validator=_positive())
    executor: str | None = _cli(Flag("--executor", "where trials run: process (worker processes even for "
                                     "--workers 1) or ray (default: this process, or processes for --workers N)",
                                     _WHERE, "NAME"),
                                default=None, validator=_check_executor)
    gpus: tuple[int, ...] | None = _cli(Flag("--gpus", "one worker process per GPU", _WHERE, "0,1", gpu_list),
                                        default=None, validator=_check_gpus)
    distribute: Any = _cli(Flag("--distribute", "mirrored: each trial trains on all local GPUs", _WHERE, "NAME"),
                           default=None, validator=_check_distribute)
    fuse: int | str = _cli(Flag("--fuse", "train up to N compatible combinations together in one traced step "
                                "(default auto; 1 trains each alone with Keras's own fit)", _WHERE, "N|auto",
                                integer_or_text),
                           default=FUSE_AUTO, converter=_as_int, validator=_check_fuse)
    address: str | None = _cli(Flag("--address", "ray: the cluster to connect to, such as auto or "
                                    "ray://head:10001 (default: start a local instance)", _WHERE, "ADDR"),
                               default=None)
    trial_resources: Mapping[str, float] | None = _cli(
        Flag("--trial-cpus", "ray: CPUs per trial (default 1)", _WHERE, "N", number, key="num_cpus"),
        Flag("--trial-gpus", "ray: GPUs per trial (default 0)", _WHERE, "N", number, key="num_gpus"),
        default=None, validator=_check_resources)
    # storage and outputs
    storage: str | None = _cli(Flag("--storage", "SQLite journal of the trials; running again resumes "
                                    "(see --fresh)", _STORAGE, "PATH"),
                               default=None, validator=_check_path)
    resume: bool = _cli(Flag("--fresh", "start a new search in --storage's file instead of resuming "
                             "(keeps the old)", _STORAGE, switch=True, to_setting=lambda fresh: not fresh),
                        default=True, validator=_check_bool)
    save_best: str | None = _cli(Flag("--save-best", "keep the best trial's model (best epoch's weights) as one "
                                      ".keras file", _OUTPUT, "PATH"),
                                 default=None)
    tensorboard_dir: str | None = _cli(Flag("--tensorboard", "write one TensorBoard run per trial and the "
                                            "HParams summary under DIR", _OUTPUT, "DIR"),
                                       default=None)
    verbose: Any = attrs.field(default=0, validator=_check_verbose)

    NAMES: ClassVar[tuple[str, ...]]

    def __attrs_post_init__(self) -> None:
        """Checks that need two settings: knobs that the chosen strategy or executor ignores
        are refused, never silently dropped (one rule for both)."""
        if self.strategy not in CONTINUING:
            for name in ("eta", "min_epochs"):
                if getattr(self, name) is not None:
                    raise GridSpecError(
                        Named(name, python=f"{name}="), " tunes successive halving; it needs ",
                        Named("strategy", CONTINUING, one_of=True), " (got ", Named("strategy", self.strategy),
                        ", ", Named(name, getattr(self, name)), ")", setting=name)
        if self.executor != "ray":
            for name in ("address", "trial_resources"):
                if getattr(self, name) is not None:
                    value = getattr(self, name)
                    raise GridSpecError(
                        Named(name, python=f"{name}="), " tunes the Ray executor; it needs ",
                        Named("executor", "ray"), " (got ", Named("executor", self.executor), ", ",
                        Named(name, value, cli=_as_flags(name, value)), ")", setting=name)
        if self.workers > 1:
            check_portable_distribute(self.distribute)

    @classmethod
    def check_names(cls, settings: Mapping[str, Any]) -> None:
        """A name that is no setting: "did you mean", or the list of settings."""
        for name in settings:
            if name not in cls.NAMES:
                raise GridSpecError(
                    f"search() got an unknown setting {name}={settings[name]!r}"
                    f"{did_you_mean(name, cls.NAMES) or '; the settings are ' + ', '.join(cls.NAMES)}"
                )

    @classmethod
    def create(cls, **settings: Any) -> SearchSettings:
        """The settings a user passed by name; a misspelt name gets "did you mean"."""
        cls.check_names(settings)
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

    @staticmethod
    def flags() -> list[tuple[str, Flag]]:
        """Every ``gridspec run`` option of a setting, as ``(setting name, Flag)``, in order."""
        return [(field.name, flag) for field in attrs.fields(SearchSettings) for flag in field.metadata.get("cli", ())]


SearchSettings.NAMES = tuple(f.name for f in attrs.fields(SearchSettings))
