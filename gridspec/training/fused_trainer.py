"""The fused trainer: fits that read the same batches train together (docs/search.md, "Fused trials").

Groups the fits it is given by what they read — the same data-factory arguments and
``batch_size`` (``context.sources.key``), the same seed, epochs and start epoch — builds
each member's model one after another from its own seed exactly as the reference trainer
does, and trains each group with its backend's ``fit_group`` (``fused`` on TensorFlow,
``jax_group`` on JAX). Everything that can't train in a
group trains alone through the reference trainer, with a note saying why, once:

- a model function that raises never enters the group (its fit alone records the error);
- a model that refuses to join (the backend's ``why_alone``), or callbacks that can't be copied;
- an exception inside the group's traced step: the members are rebuilt and trained alone,
  so only the culprit fails.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import keras

from gridspec.records import TrainingContext
from gridspec.data import DEFAULT_ARRAY_BATCH_SIZE
from gridspec.training import Fit, FitOutcome, continuation
from gridspec.training.fused import GroupStepError, release
from gridspec.training.grouping import free_memory_bytes, group_size_cap, group_size_for
from gridspec.training.jax_compile import collector_paused
from gridspec.training.models import build_model, datasets
from gridspec.training.reference import fit_one

__all__ = ["FusedTrainer", "fusion_unavailable"]


def fusion_unavailable() -> str | None:
    """Why no group can train in this process, or None when groups can."""
    if keras.backend.backend() not in ("tensorflow", "jax"):
        return f"the Keras backend is {keras.backend.backend()}; fused training needs tensorflow or jax"
    return None


def group_functions() -> tuple[Any, Any, Any]:
    """This backend's ``(fit_group, why_alone, group_size_cap)``: one traced step a group on
    TensorFlow (``fused``), one XLA program a group on JAX (``jax_group``)."""
    if keras.backend.backend() == "jax":
        from gridspec.training import jax_group

        def jax_cap(models: list[Any], limit: int, batch_size: int) -> int:
            return jax_group.group_size_cap(models, limit, batch_size)

        return jax_group.fit_group, jax_group.why_alone, jax_cap
    from gridspec.training import fused

    def cap(models: list[Any], limit: int, batch_size: int) -> int:
        return group_size_cap(models, limit, free_memory_bytes())

    return fused.fit_group, fused.why_alone, cap


class FusedTrainer:
    """Trains compatible fits together, the rest alone (see the module docstring)."""

    def __init__(self, context: TrainingContext) -> None:
        self.context = context
        fuse = context.settings.fuse
        self.group_size = group_size_for(fuse, keras.backend.backend())
        self._fit_group, self._why_alone, self._cap = group_functions()
        # on JAX, building a member runs no collector (jax_compile.collector_paused)
        self._building = collector_paused if keras.backend.backend() == "jax" else nullcontext
        # Models a halving-type strategy may continue, kept in memory with their traced steps
        # (trial number, repeat) -> model: a promoted member continues from them without a
        # rebuild, a restore or a new trace of its step. Bounded; a model evicted (or never
        # kept) is rebuilt from its checkpoint instead, which is slower and gives the same.
        # Each model is kept with the epoch it ended at: a trial continued elsewhere since
        # (another worker, another node) has moved on, and its model here is stale.
        self._kept: OrderedDict[tuple[int, int], tuple[Any, int]] = OrderedDict()
        self._keep_at_most = 4 * self.group_size

    def fit_all(self, fits: Sequence[Fit]) -> list[FitOutcome]:
        outcomes: list[FitOutcome | None] = [None] * len(fits)
        groups: dict[Any, list[int]] = {}
        for i, fit in enumerate(fits):
            t = fit.task
            key = (self.context.sources.key(t.params), fit.seed, fit.repeat, t.epochs, t.start_epoch)
            groups.setdefault(key, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.group_size):
                chunk = indices[start:start + self.group_size]
                for i, outcome in zip(chunk, self._train([fits[i] for i in chunk])):
                    outcomes[i] = outcome
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def holds(self, number: int, repeat: int, epoch: int) -> bool:
        held = self._kept.get((number, repeat))
        return held is not None and held[1] == epoch

    def _let_go(self, key: tuple[int, int], model: Any) -> None:
        """A kept model leaves memory: with lazy checkpoints, its file is written now."""
        s = self.context.settings
        path = continuation.checkpoint_path(s, *key)
        if s.folders.lazy_checkpoints and path is not None:
            continuation.keep(model, path)
        release([model])

    # -- one group ---------------------------------------------------------------------------
    def _alone(self, fit: Fit) -> FitOutcome:
        held = self._kept.pop((fit.task.number, fit.repeat), None) if fit.task.start_epoch else None
        if held is not None and held[1] == fit.task.start_epoch:  # fit_one continues from the file:
            self._let_go((fit.task.number, fit.repeat), held[0])  # written first
        elif held is not None:
            release([held[0]])  # stale
        try:
            return fit_one(self.context, fit)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # classified by the trial runner
            return FitOutcome(error=exc)

    def _callbacks(self, fit: Fit) -> list[Any] | None:
        """The member's own copies of the user's callbacks, then its own extras."""
        try:
            own = [copy.deepcopy(c) for c in self.context.callbacks]
        except Exception as exc:  # noqa: BLE001 - any failure to copy means "train alone"
            self.context.note(f"trials train alone: a callback can't be copied for each trial ({exc})")
            return None
        return [*own, *fit.callbacks]

    def _train(self, fits: list[Fit]) -> list[FitOutcome]:
        if len(fits) == 1:
            return [self._alone(fits[0])]
        context, s = self.context, self.context.settings
        outcomes: dict[int, FitOutcome] = {}
        members: list[tuple[int, Any, list[Any]]] = []  # (position, model, callbacks)
        unsaved: dict[int, list[Any]] = {}  # position -> state of a model in memory only
        copies = [self._callbacks(fit) for fit in fits]
        own = [c for c in copies if c is not None]
        if len(own) < len(fits):
            return [self._alone(f) for f in fits]
        for position, (fit, callbacks) in enumerate(zip(fits, own)):
            held = self._kept.pop((fit.task.number, fit.repeat), None) if fit.task.start_epoch else None
            if held is not None and held[1] == fit.task.start_epoch:
                members.append((position, held[0], callbacks))  # promoted: its model is still in memory
                if s.folders.lazy_checkpoints:  # no file yet: keep a way back if the group's step fails
                    unsaved[position] = continuation.snapshot(held[0])
                continue
            if held is not None:
                release([held[0]])  # stale
            # As between two trials alone: names (metrics' too, so history keys) start afresh,
            # and the model is built from the seed's random state.
            keras.backend.clear_session(free_memory=False)
            keras.utils.set_random_seed(fit.seed)
            try:
                with self._building():
                    model = build_model(context.grid, fit.task.params)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # never enters the group; fails exactly as alone
                outcomes[position] = FitOutcome(error=exc, built=False)
                continue
            reason = self._why_alone(model)
            if reason is not None:
                context.note(f"trial {fit.task.number} trains alone: {reason}")
                del model
                outcomes[position] = self._alone(fit)
                continue
            if fit.task.start_epoch:
                model = continuation.restore(model, continuation.checkpoint_path(s, fit.task.number, fit.repeat))
            members.append((position, model, callbacks))
        batch_size = int(fits[0].task.params.get("batch_size", DEFAULT_ARRAY_BATCH_SIZE))
        cap = self._cap([m for _, m, _ in members], self.group_size, batch_size) if members else 1  # fuse=N (or auto's size) caps; memory may lower it
        if len(members) > cap:  # memory: the rest of this group trains in a second one
            kept, rest = members[:cap], members[cap:]
            for position, model, _ in rest:
                fit = fits[position]
                if fit.task.start_epoch:  # back where the second group finds it (unsaved, maybe)
                    self._kept[(fit.task.number, fit.repeat)] = (model, fit.task.start_epoch)
                    unsaved.pop(position, None)
                del model
            members = kept
            for position, outcome in zip([p for p, _, _ in rest],
                                         self._train([fits[p] for p, _, _ in rest])):
                outcomes[position] = outcome
        if members:
            self._fit_members(fits, members, outcomes, unsaved)
        return [outcomes[p] for p in range(len(fits))]

    def _fit_members(self, fits: list[Fit], members: list[tuple[int, Any, list[Any]]],
                     outcomes: dict[int, FitOutcome], unsaved: dict[int, list[Any]]) -> None:
        context, s = self.context, self.context.settings
        first = fits[members[0][0]]
        numbers = tuple(fits[p].task.number for p, _, _ in members)
        try:
            train_data, val_data, sources = datasets(context, first.task, first.seed)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*ran out of data.*")
                try:
                    group = self._fit_group(
                        [m for _, m, _ in members], train_data,
                        epochs=first.task.epochs, initial_epoch=first.task.start_epoch,
                        steps_per_epoch=s.steps_per_epoch, validation_data=val_data,
                        callbacks=[c for _, _, c in members],
                    )
                finally:
                    for source in sources:  # a factory's error inside tf.data, as gridspec's own
                        source.raise_pending()
        except GroupStepError as exc:
            lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
            context.note(f"trials {', '.join(map(str, numbers))} train alone: the group's traced step "
                        f"failed ({lines[0] if lines else type(exc).__name__}); each trial's own error follows")
            for position, model, _ in members:
                path = continuation.checkpoint_path(s, fits[position].task.number, fits[position].repeat)
                if position in unsaved and path is not None:  # alone, it continues from its file,
                    continuation.rewind(unsaved[position])  # written as the model was before the step
                    continuation.keep(model, path)
            for position, _, _ in members:
                outcomes[position] = self._alone(fits[position])
            return
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a data error: every member read the same batches
            for position, _, _ in members:
                outcomes[position] = FitOutcome(error=exc, fused_with=numbers)
            keras.backend.clear_session(free_memory=False)
            return
        if any(member.stacked > 1 for member in group):
            context.note("trials that compute the same program train stacked, one batched step for all "
                         "(jax.vmap): their histories match fit's within float rounding, not bit for bit; "
                         "GRIDSPEC_STACK=0 trains each as its own program")
        for (position, model, _), member in zip(members, group):
            fit = fits[position]
            saved = continuation.checkpoint_path(s, fit.task.number, fit.repeat)
            if saved is not None and member.error is None and not s.folders.lazy_checkpoints:
                continuation.keep(model, saved)
            outcomes[position] = FitOutcome(history=member.history, error=member.error, fused_with=numbers)
        keep = s.folders.checkpoint_dir is not None  # a halving-type search may continue these
        for (position, model, _), member in zip(members, group):
            fit = fits[position]
            if keep and member.error is None:
                self._kept[(fit.task.number, fit.repeat)] = (model, fit.task.epochs)
        while len(self._kept) > self._keep_at_most:
            key, (model, _) = self._kept.popitem(last=False)
            self._let_go(key, model)
        if not keep:
            release([m for _, m, _ in members])  # the group's traced step holds every member alive
        members.clear()
        keras.backend.clear_session(free_memory=False)
        if not keep and keras.backend.backend() == "jax":
            from gridspec.training.jax_group import forget_compiled

            forget_compiled()  # nothing will reuse this group's programs
