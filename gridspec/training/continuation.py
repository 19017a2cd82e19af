"""Continuation for successive halving: a trial's model and history kept between its runs.

A promoted trial continues from the weights, optimizer state and random-number state its
previous rung ended with, instead of retraining from scratch. Checkpoints live in
``RunFolders.checkpoint_dir`` as ``trial-N-R.keras`` (per repeat) and ``trial-N.json``
(history and seconds so far). Keras's ``model.save`` leaves out the state of the model's
random-number generators (each ``Dropout``'s ``SeedGenerator``): without it a continued model
would draw its first epochs' dropout masks again and leave the curve of an uninterrupted run,
so ``keep`` adds that state to the ``.keras`` file (an entry Keras ignores) and ``restore``
puts it back. They
are only an optimisation: a missing or unusable checkpoint means the trial retrains from
scratch to its budget, which is slower and still right. Knows nothing of strategies.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["checkpoint_path", "concat_history", "earlier_run", "keep", "pack", "remember", "restore", "rewind",
           "seed_states", "snapshot", "unpack"]

_SEEDS = "gridspec-seed-states.json"  # the entry of a checkpoint's .keras file that holds them


def _keras() -> Any:
    import keras

    return keras


def checkpoint_path(settings: Any, number: int, repeat: int) -> str | None:
    folder = settings.folders.checkpoint_dir
    if folder is None:
        return None
    return os.path.join(folder, f"trial-{number}-{repeat}.keras")


def keep(model: Any, path: str) -> None:
    """Save the model for a later rung. Only an optimisation: if this node can't write the
    folder, a promoted trial retrains from scratch instead (see ``earlier_run``)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)  # a cluster node may not have it yet
        model.save(path)
        _add_seed_states(model, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # never leave an earlier rung's model to continue
            os.remove(path)
        warnings.warn(f"gridspec could not keep a checkpoint at {path} ({exc}); a promoted "
                      f"trial will retrain from scratch", RuntimeWarning, stacklevel=2)


def seed_states(model: Any) -> list[Any]:
    """The state variables of the model's random-number generators (a ``SeedGenerator``'s
    seed and counter, one per ``Dropout`` and the like), in the order the model was built:
    they are among ``model.variables`` but not among its weights, which is all ``save`` keeps."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _add_seed_states(model: Any, path: str) -> None:
    states = [[int(x) for x in v.numpy().ravel()] for v in seed_states(model)]
    if states:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(_SEEDS, json.dumps(states))


def _load_seed_states(model: Any, path: str) -> None:
    """Put back the random-number state ``keep`` stored with the model (none: nothing to do)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if _SEEDS not in archive.namelist():
                return
            states = json.loads(archive.read(_SEEDS))
    except (OSError, zipfile.BadZipFile, ValueError):
        return
    variables = seed_states(model)
    if len(variables) != len(states):
        return  # not this model's: a model built differently draws differently anyway
    for variable, state in zip(variables, states):
        if len(state) == int(variable.numpy().size):
            variable.assign(np.asarray(state, dtype=variable.numpy().dtype).reshape(variable.shape))


def snapshot(model: Any) -> list[Any]:
    """The model's whole state in memory (weights, metric and seed state, optimizer
    variables): cheap, and enough to write the checkpoint later as it is now (``rewind``)."""
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *(optimizer.variables if optimizer is not None else ())]
    return [(v, v.numpy()) for v in variables]


def rewind(state: list[Any]) -> None:
    """Put back the state ``snapshot`` took (a group step that failed half-way changed it)."""
    for variable, value in state:
        variable.assign(value)


def restore(model: Any, path: str | None) -> Any:
    """The freshly built ``model`` with the weights, optimizer and random-number state saved
    at ``path``.

    Building through the user's function first keeps custom layers working without
    registration; a model that isn't built yet (subclassed) is loaded whole instead.
    """
    assert path is not None
    if getattr(model, "built", False) and getattr(model, "optimizer", None) is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
    else:
        model = _keras().models.load_model(path)
    _load_seed_states(model, path)
    return model


def earlier_run(settings: Any, task: Any, held: Callable[[int, int, int], bool] | None = None,
                ) -> tuple[dict[str, list[float]] | None, float]:
    """The history and seconds of the runs a continuing ``task`` builds on (None: start over).
    ``held(number, repeat, epoch)`` says whether the trainer still holds that model in memory
    at that epoch (then its checkpoint file may not be written yet)."""
    folder = settings.folders.checkpoint_dir
    if not task.start_epoch or folder is None:
        return None, 0.0
    meta = os.path.join(folder, f"trial-{task.number}.json")
    paths = [checkpoint_path(settings, task.number, r) for r in range(settings.repeats)]
    if not os.path.exists(meta) or not all(
            (p and os.path.exists(p)) or (held is not None and held(task.number, r, task.start_epoch))
            for r, p in enumerate(paths)):
        return None, 0.0
    with open(meta, encoding="utf-8") as f:
        data = json.load(f)
    history = {k: [float(v) for v in vs] for k, vs in data["history"].items()}
    if any(len(vs) != task.start_epoch for vs in history.values()):
        return None, 0.0  # the checkpoint is from another epoch than this task continues
    return history, float(data["duration"])


def remember(settings: Any, number: int, history: dict[str, list[float]], duration: float) -> None:
    folder = settings.folders.checkpoint_dir
    if folder is None:
        return
    path = os.path.join(folder, f"trial-{number}.json")
    try:
        os.makedirs(folder, exist_ok=True)  # created by the first trial that keeps something
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"history": history, "duration": duration}, f)
        os.replace(path + ".tmp", path)
    except OSError:
        pass  # without it a promoted trial retrains from scratch: slower, still right


def concat_history(
    earlier: dict[str, list[float]] | None, later: dict[str, list[float]]
) -> dict[str, list[float]]:
    """One curve per key over the whole run: earlier rungs' epochs, then this run's."""
    if not earlier:
        return later
    return {k: earlier[k] + vs for k, vs in later.items() if k in earlier}


# -- carrying checkpoints between machines (no shared filesystem) --------------------------------
def _names(folder: str, number: int) -> list[str]:
    """The checkpoint files of trial ``number`` in ``folder``: its history, then each repeat's model."""
    try:
        present = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in present if _is_own(number, n))


def _is_own(number: int, name: str) -> bool:
    """Whether ``name`` is one of trial ``number``'s checkpoint files (and nothing else)."""
    prefix = f"trial-{number}-"
    return name == f"trial-{number}.json" or (
        name.startswith(prefix) and name.endswith(".keras") and name[len(prefix):-6].isdigit())


def pack(folder: str | None, number: int, remove: bool = False) -> dict[str, bytes]:
    """Trial ``number``'s checkpoint files as ``{name: bytes}`` (empty: nothing to continue
    from), to travel with a result or a task to a machine that can't read ``folder``.
    ``remove`` deletes them once read (a worker's own folder: the search's process keeps them)."""
    if folder is None:
        return {}
    files: dict[str, bytes] = {}
    for name in _names(folder, number):
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                files[name] = f.read()
            if remove:
                os.remove(path)
        except OSError:
            return {}  # incomplete: the trial retrains from scratch, slower and still right
    has_meta = f"trial-{number}.json" in files
    return files if has_meta and len(files) > 1 else {}


def unpack(folder: str | None, number: int, files: dict[str, bytes]) -> None:
    """Write trial ``number``'s carried checkpoint files into ``folder``, replacing older ones."""
    if folder is None or not files:
        return
    names = set(_names(folder, number)) if os.path.isdir(folder) else set()
    try:
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            if not _is_own(number, name):
                continue  # only this trial's own files, never a path elsewhere
            with open(os.path.join(folder, name + ".tmp"), "wb") as f:
                f.write(data)
            os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))
        for stale in names - set(files):  # a repeat the carried run does not have
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, stale))
    except OSError as exc:
        warnings.warn(f"gridspec could not keep trial {number}'s checkpoint in {folder} ({exc}); "
                      f"a promoted trial will retrain from scratch", RuntimeWarning, stacklevel=2)

