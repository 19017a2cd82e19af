"""The scheduling loop of a search (``_Loop``, phase 5 of ``search()``): ask the strategy,
gather proposals while the executor has free slots, split them into groups of trials that
read the same batches, submit each group as one unit of work, and tell the strategy every
outcome in the order it was asked for, journaling it first and emitting progress events.

Knows nothing of Keras or of how a group trains (``trial`` and ``training`` do).
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable
from typing import Any

import attrs

from gridspec.errors import GridSpecError
from gridspec.executors import Executor
from gridspec.interrupt import StopRequest
from gridspec.journal import Journal
from gridspec.progress import Event, Note, TrialFinished, TrialStarted
from gridspec.records import TrialTask
from gridspec.result import Trial, TrialStatus
from gridspec.strategies import Decision, Proposal, Strategy
from gridspec.trial import failed_trial


class _Loop:
    """Ask the strategy, submit groups of tasks to the executor, tell outcomes back.

    Proposals are gathered while the executor has free slots (up to ``group_size`` per
    slot) and split into groups of trials that read the same batches (``group_key``); a
    group is one unit of work for the executor. With ``group_size=1`` every trial is its
    own group, which is exactly one trial per slot. When the strategy has run dry (ASHA near
    a rung's end) while other workers are busy, the proposals are split as if every worker
    were free, and the groups beyond the free slots wait here, whole, for the next free
    worker: one worker does not get all the remaining work while the others soon sit idle.
    Groups still waiting when a stop is asked for are never sent (nor journaled).
    """

    def __init__(self, space: Any, plan: Strategy, executor: Executor,
                 report: Callable[[Event], None] | None,
                 journal: Journal | None = None, max_failures: int | None = None,
                 on_trial: Callable[[Trial], Any] | None = None, *,
                 group_size: int = 1, group_key: Callable[[Any], Any] = lambda params: None,
                 epochs_axis: bool = False, continues: bool = False) -> None:
        self.on_trial = on_trial  # sees every finished trial first (save_best keeps the best model)
        self.space = space
        self.plan = plan
        self.executor = executor
        self.report = report
        self.group_size = max(1, group_size)
        self.group_key = group_key
        self.epochs_axis = epochs_axis
        self.continues = continues  # budgeted strategies: progress events name the rung
        self.trials: dict[int, Trial] = {}
        self.position = 0
        self.finished = 0
        self.durations: list[float] = []
        self.journal = journal
        self.max_failures = max_failures
        self.failures_in_a_row = 0
        self.gave_up: Trial | None = None  # the last of max_failures failures in a row
        self.told_after_give_up = 0  # trials of the same group(s) that finished after it
        self.started_in: dict[int, int] = {}  # rung -> trials submitted (halving counts per rung)
        self.finished_in: dict[int, int] = {}
        self._groups_left: dict[int, int] = {}  # group id -> members still running
        self._next_group = 0
        self._order: dict[concurrent.futures.Future[Trial], int] = {}  # submission order
        self._arrived_with = 0  # outcomes that arrived with the one being told, still to tell
        self.in_progress: tuple[int, ...] = ()  # the trials of the group being submitted
        self._budgets: dict[int, int] = {}  # combination index -> budget of its latest outcome

    def _emit(self, event: Event) -> None:
        if self.report is not None:
            self.report(event)

    def _epochs(self, proposal: Proposal) -> int:
        """The budget of a proposal: the strategy's, or the combination's ``epochs`` axis."""
        if self.epochs_axis:  # a sub-grid without the axis trains the search's epochs
            return int(self.space[proposal.index].get("epochs", proposal.epochs))
        return proposal.epochs

    def _task(self, proposal: Proposal) -> TrialTask:
        return TrialTask(proposal.number, self.space[proposal.index], self._epochs(proposal), proposal.start_epoch)

    def _stored(self, proposal: Proposal) -> Trial | None:
        return self.journal.stored(proposal.number, self._epochs(proposal)) if self.journal else None

    def _groups(self, proposals: list[Proposal], slots: int) -> list[list[Proposal]]:
        """Split proposals into groups of the same batches, spread over ``slots`` workers."""
        buckets: dict[Any, list[Proposal]] = {}
        for proposal in proposals:
            buckets.setdefault(self.group_key(self.space[proposal.index]), []).append(proposal)
        size = min(self.group_size, max(1, math.ceil(len(proposals) / max(1, slots))))
        return [bucket[i:i + size] for bucket in buckets.values() for i in range(0, len(bucket), size)]

    def _submit(self, group: list[Proposal]) -> dict[concurrent.futures.Future[Trial], tuple[Proposal, int]]:
        tasks = []
        numbers = tuple(p.number for p in group)
        for proposal in group:
            task = self._task(proposal)
            tasks.append(task)
            self.position += 1
            self.started_in[proposal.rung] = self.started_in.get(proposal.rung, 0) + 1
            position, total = self._progress(proposal, self.position, self.started_in)
            self._emit(TrialStarted(position, total, task.number, task.params, task.epochs, task.start_epoch,
                                    rung=proposal.rung if self.continues else None, group=numbers))
            if self.journal is not None:
                self.journal.record_start(task.number, task.epochs)
        gid = self._next_group
        self._next_group += 1
        self._groups_left[gid] = len(group)
        self.in_progress = tuple(task.number for task in tasks)  # in-process: trains right here
        try:
            futures = self.executor.submit_many(tasks)
        finally:
            self.in_progress = ()
        for future in futures:
            self._order[future] = len(self._order)
        return {future: (proposal, gid) for future, proposal in zip(futures, group)}

    def _resume(self, proposal: Proposal, stored: Trial) -> None:
        """A proposal the journal already answers: no training, params taken from the grid."""
        trial = attrs.evolve(stored, params=self.space[proposal.index])
        self.trials[proposal.index] = trial
        self._budgets[proposal.index] = self._epochs(proposal)
        if self.on_trial is not None:
            self.on_trial(trial)
        self.plan.tell(proposal, stored.score)
        self.position += 1
        self.finished += 1
        self._rung_notes()

    def _collect(self, proposal: Proposal, future: concurrent.futures.Future[Trial]) -> None:
        exc = future.exception()
        if exc is not None:
            if isinstance(exc, GridSpecError) and not any(t.ok for t in self.trials.values()):
                raise exc  # a mistake in the definition: stop before it repeats N times
            trial = failed_trial(self._task(proposal), exc, 0.0, fused_with=getattr(exc, "fused_with", ()))
        else:
            trial = future.result()
        if self.journal is not None:  # committed before anyone hears of the trial
            self.journal.record_finish(trial, self._epochs(proposal))
        self.trials[proposal.index] = trial
        self._budgets[proposal.index] = self._epochs(proposal)
        if self.gave_up is not None:
            self.told_after_give_up += 1
        if trial.status is TrialStatus.FAILED:
            self.failures_in_a_row += 1
            if self.max_failures is not None and self.failures_in_a_row >= self.max_failures:
                self.gave_up = self.gave_up or trial  # the streak's end, as fuse=1 would stop there
        else:
            self.failures_in_a_row = 0
        if self.on_trial is not None:
            self.on_trial(trial)
        self.plan.tell(proposal, trial.score if trial.status is not TrialStatus.FAILED else None)
        self.finished += 1
        self.finished_in[proposal.rung] = self.finished_in.get(proposal.rung, 0) + 1
        self.durations.append(trial.duration)
        position, total = self._progress(proposal, self.finished, self.finished_in)
        # trials that finished together with this one (a fused group) are not "remaining"
        remaining = max(0, total - position - self._arrived_with)
        eta = sum(self.durations) / len(self.durations) * remaining / self.executor.capacity if remaining else None
        self._emit(TrialFinished(position, total, trial, eta))
        self._rung_notes()

    def _rung_notes(self) -> None:
        for outcome in self.plan.take_outcomes():  # halving's rung lines
            self._emit(Note(str(outcome)))

    def _progress(self, proposal: Proposal, overall: int, per_rung: dict[int, int]) -> tuple[int, int]:
        """"Model i of N": over the whole run, or within the rung for halving."""
        rung_size = self.plan.rung_size(proposal.rung)
        if rung_size is None:
            return overall, self.plan.total
        return per_rung[proposal.rung], rung_size

    def done(self) -> int:
        """Trials finished for good, not rung runs: under halving, ASHA and Hyperband a trial
        once it failed, was pruned or reached the full budget."""
        full = getattr(self.plan, "epochs", None) if self.continues else None
        if not isinstance(full, int):
            return len(self.trials)
        pruned = self.plan.pruned
        return sum(1 for i, t in self.trials.items()
                   if t.status is TrialStatus.FAILED or i in pruned or self._budgets.get(i, 0) >= full)

    def collected(self) -> list[Trial]:
        pruned = self.plan.pruned
        return [
            attrs.evolve(t, status=TrialStatus.PRUNED)
            if i in pruned and t.status is TrialStatus.COMPLETE else t
            for i, t in sorted(self.trials.items())
        ]

    def run(self, stop: StopRequest | None = None) -> list[Trial]:
        pending: dict[concurrent.futures.Future[Trial], tuple[Proposal, int]] = {}
        held: list[list[Proposal]] = []  # groups asked for, waiting for a free worker
        while True:
            decision: Proposal | Decision = Decision.WAIT
            stopping = (stop is not None and stop.requested) or self.gave_up is not None
            slots = self.executor.capacity - len(self._groups_left)
            batch: list[Proposal] = []
            if not stopping and slots > 0 and held:  # formed for a worker that was busy then
                for group in held[:slots]:
                    pending.update(self._submit(group))
                held = held[slots:]
                continue
            if not stopping and slots > 0:
                while len(batch) < self.group_size * slots:
                    decision = self.plan.ask()
                    self._rung_notes()  # a rung decided as it promotes: said before its trials train
                    if not isinstance(decision, Proposal):
                        break
                    stored = self._stored(decision)
                    if stored is not None:
                        self._resume(decision, stored)
                    else:
                        batch.append(decision)
            if batch:
                spread = slots
                if not isinstance(decision, Proposal) and slots < self.executor.capacity:
                    # the strategy has no more for now and other workers are busy: this work is
                    # shared with them as they free up, not all given to the first free worker
                    spread = self.executor.capacity
                groups = self._groups(batch, spread)
                now, held = (groups[:slots], groups[slots:]) if spread != slots else (groups, [])
                for group in now:
                    pending.update(self._submit(group))
                continue
            if not pending:
                if decision is Decision.STOP or stopping:
                    break
                raise RuntimeError("strategy waits with no trial running")  # a strategy bug
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            # outcomes that arrive together are told in the order they were asked for, as if
            # the trials had trained one after another
            for told, future in enumerate(sorted(done, key=self._order.__getitem__), start=1):
                self._arrived_with = len(done) - told
                del self._order[future]
                proposal, gid = pending.pop(future)
                self._groups_left[gid] -= 1
                if not self._groups_left[gid]:
                    del self._groups_left[gid]
                self._collect(proposal, future)
        return self.collected()
