"""What a search has done so far, counted from its progress events, for both displays.

Progress is counted in epochs, summed over trials ("member-epochs"): a fused group of twelve
trials that has trained one of its three epochs is a third of the way, although none of its
trials has finished. The total is what the strategy plans (``SearchStarted.planned_epochs``:
exact for grid, random, halving and hyperband when nothing fails, an estimate for ASHA);
without it (an ``epochs`` axis) each trial counts as one, in fractions of its epochs. The
ETA is the pace since the first work was seen (building the models and tracing their step
come before it) applied to the work left.

A group of trials sent to train together (``TrialStarted.group``) gets a line as it starts
and one when its last trial has finished, with the group's time: a fused trial's own
``duration`` is only its share of that time.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from gridspec.display.lines import format_duration
from gridspec.progress import BatchEnded, EpochEnded, Event, SearchStarted, TrialFinished, TrialStarted
from gridspec.result import Trial, TrialStatus, better

__all__ = ["Running", "Tally", "numbers_text"]


@attrs.define
class Running:
    """A trial in training, as its events tell it."""

    number: int
    params: dict[str, Any]
    epochs: int  # the epoch this run trains up to
    start_epoch: int = 0  # the epoch it continues from
    rung: int | None = None
    epoch: int = 0  # epochs finished so far (counting from the trial's first, like ``epochs``)
    batch: int | None = None
    steps: int | None = None
    loss: float | None = None
    objective: float | None = None  # the latest value
    best: float | None = None  # the best value in this run so far, and its epoch
    best_epoch: int | None = None

    def done(self) -> float:
        """Epochs of this run trained so far, the epoch in progress in fractions of it."""
        partial = self.batch / self.steps if self.batch is not None and self.steps else 0.0
        return max(0.0, min(self.epoch - self.start_epoch + partial, float(self.epochs - self.start_epoch)))


@attrs.define
class _Group:
    numbers: tuple[int, ...]
    started: float
    left: set[int]


def numbers_text(numbers: tuple[int, ...] | list[int]) -> str:
    """Trial numbers with runs joined: ``1-12``, ``4, 6, 30``, ``1-3, 7``."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if j == i else f"{ordered[i]}-{ordered[j]}" if j > i + 1
                     else f"{ordered[i]}, {ordered[j]}")
        i = j + 1
    return ", ".join(parts)


class Tally:
    """The counts both displays draw from; ``update`` takes each event in order and returns
    the extra plain lines it brings (a group's start and end)."""

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self.clock = clock
        self.search: SearchStarted | None = None
        self.started: float | None = None
        self.running: dict[int, Running] = {}
        self.finished_work = 0.0  # work of the runs that ended (their planned share)
        self.ended: set[int] = set()  # trials whose latest run has ended
        self.best: Trial | None = None
        self.failures: list[Trial] = []
        self.rungs: dict[int, list[int]] = {}  # rung -> [epochs, finished, size]
        self._groups: dict[int, _Group] = {}  # trial number -> its group
        self._first: tuple[float, float] | None = None  # (time, work done) when work was first seen

    # -- events ------------------------------------------------------------------------------
    def update(self, event: Event) -> list[str]:
        lines = self._update(event, self.clock())
        if self._first is None and self.started is not None:
            done, _ = self.progress()
            if done > 0:
                self._first = (self.clock(), done)
        return lines

    def _update(self, event: Event, now: float) -> list[str]:
        if isinstance(event, SearchStarted):
            self.search, self.started = event, now
        elif isinstance(event, TrialStarted):
            return self._start(event, now)
        elif isinstance(event, EpochEnded):
            trial = self.running.get(event.number)
            if trial is not None:
                trial.epoch, trial.batch = event.epoch, None
                trial.loss = event.logs.get("loss", trial.loss)
                value = event.logs.get(self.search.objective) if self.search is not None else None
                if value is not None and self.search is not None:
                    trial.objective = value
                    if value == value and (trial.best is None or better(value, trial.best, self.search.direction)):
                        trial.best, trial.best_epoch = value, event.epoch
        elif isinstance(event, BatchEnded):
            trial = self.running.get(event.number)
            if trial is not None:
                trial.batch, trial.steps = event.batch, event.steps
                trial.loss = event.logs.get("loss", trial.loss)
        elif isinstance(event, TrialFinished):
            return self._finish(event, now)
        return []

    def _start(self, event: TrialStarted, now: float) -> list[str]:
        self.running[event.number] = Running(event.number, dict(event.params), event.epochs, event.start_epoch,
                                             event.rung, epoch=event.start_epoch)
        self.ended.discard(event.number)
        if event.rung is not None:
            rung = self.rungs.setdefault(event.rung, [event.epochs, 0, event.total])
            rung[0], rung[2] = event.epochs, max(event.total, rung[1])
        if len(event.group) < 2 or event.number in self._groups:
            return []
        group = _Group(tuple(event.group), now, set(event.group))
        for number in event.group:
            self._groups[number] = group
        span = (f"epoch {event.epochs}" if event.epochs - event.start_epoch == 1
                else f"epochs {event.start_epoch + 1}-{event.epochs}")
        return [f"Training trials {numbers_text(group.numbers)} together, {span}"]

    def _finish(self, event: TrialFinished, now: float) -> list[str]:
        trial = event.trial
        ran = self.running.pop(trial.number, None)
        self.ended.add(trial.number)
        self.finished_work += self._work(ran)
        if ran is not None and ran.rung is not None and ran.rung in self.rungs:
            self.rungs[ran.rung][1] += 1
        if trial.status is TrialStatus.FAILED:
            self.failures.append(trial)
        elif trial.score is not None and self.search is not None and (
                self.best is None or self.best.score is None
                or better(trial.score, self.best.score, self.search.direction)):
            self.best = trial
        group = self._groups.pop(trial.number, None)
        if group is None:
            return []
        group.left.discard(trial.number)
        if group.left:
            return []
        line = f"Trials {numbers_text(group.numbers)} trained together in {format_duration(now - group.started)}"
        eta = self.eta()
        return [line + (f", ETA {format_duration(eta)}" if eta is not None else "")]

    # -- what the displays show ----------------------------------------------------------------
    def _by_epochs(self) -> bool:
        return self.search is not None and self.search.planned_epochs is not None

    def _work(self, run: Running | None) -> float:
        """The work a finished run counts for: its epochs, or one trial."""
        if not self._by_epochs():
            return 1.0
        return float(run.epochs - run.start_epoch) if run is not None else 0.0

    def progress(self) -> tuple[float, float]:
        """(work done, work planned): epochs summed over trials, or trials."""
        if self.search is None:
            return 0.0, 0.0
        running = list(self.running.values())
        if self._by_epochs():
            done = self.finished_work + sum(r.done() for r in running)
            left = sum(r.epochs - r.start_epoch - r.done() for r in running)
            planned = float(self.search.planned_epochs or 0)
        else:
            done = self.finished_work + sum(r.done() / max(1, r.epochs - r.start_epoch) for r in running)
            left = sum(1 - r.done() / max(1, r.epochs - r.start_epoch) for r in running)
            planned = float(self.search.total)
        return done, max(planned, done + left)  # ASHA's plan is an estimate: never below the truth

    def eta(self) -> float | None:
        """Seconds left at the pace since work was first seen; None until the pace is known
        or when no work is left."""
        if self._first is None:
            return None
        done, planned = self.progress()
        since, at = self._first
        now = self.clock()
        if done - at <= 0 or now <= since or planned - done < 1e-9:
            return None
        return (now - since) / (done - at) * (planned - done)

    def trials_done(self) -> int:
        """Trials whose latest run has ended and that are not training again."""
        return len(self.ended - set(self.running))

    def best_running(self) -> Running | None:
        """The running trial with the best objective so far, if it beats the best finished."""
        if self.search is None:
            return None
        found: Running | None = None
        for r in self.running.values():
            if r.best is not None and (found is None or better(r.best, found.best, self.search.direction)):  # type: ignore[arg-type]
                found = r
        if found is None or found.best is None:
            return None
        if self.best is not None and self.best.score is not None and not better(found.best, self.best.score,
                                                                                 self.search.direction):
            return None
        return found

    def rungs_in_progress(self) -> list[tuple[int, int, int]]:
        """(epochs, trained, size) of each rung with a trial in training, lowest rung first."""
        busy = {r.rung for r in self.running.values() if r.rung is not None}
        return [tuple(self.rungs[r]) for r in sorted(busy) if r in self.rungs]  # type: ignore[misc]
