"""Replaying a journal's log into searches (``StoredSearch``, ``replay``), and the journal of
one running search (``Journal``, ``open_journal``); ``load`` reads one search of a file."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from gridspec.ending import ending
from gridspec.errors import JournalError
from gridspec.fingerprint import Fingerprint, describe_changes
from gridspec.journal.base import JournalBackend
from gridspec.journal.sqlite import SQLiteBackend, _now, being_written
from gridspec.result import SearchResult, Trial, TrialStatus
from gridspec.settings import CONTINUING as _CONTINUING


# -- replay --------------------------------------------------------------------------------
@attrs.frozen
class StoredSearch:
    """One search of a journal, as replayed: its fingerprint and its trials."""

    id: int  # 1-based order of the search in the file
    fingerprint: str
    parts: dict[str, Any] = attrs.field(eq=False, repr=False)
    info: dict[str, Any] = attrs.field(eq=False, repr=False)
    latest: dict[int, Trial] = attrs.field(factory=dict, repr=False)  # number -> last finish
    finished: dict[tuple[int, int], Trial] = attrs.field(factory=dict, repr=False)  # (number, budget)
    running: tuple[int, ...] = ()  # started and never finished: interrupted, or in progress
    searches: int = 1  # searches in the file
    path: str | None = None
    budgets: dict[int, int] = attrs.field(factory=dict, repr=False)  # number -> budget of its latest finish
    live: bool = False  # a search was writing the file when it was read

    @property
    def trials(self) -> tuple[Trial, ...]:
        """Each trial's latest finish; under halving, ASHA and Hyperband a COMPLETE trial that
        stopped below the full budget is PRUNED, as the search's own result says, unless it
        runs on (promoted) or, while the search runs, waits for its rung to end."""
        below = self._below_budget()
        waiting = set(self.waiting)
        return tuple(
            attrs.evolve(self.latest[n], status=TrialStatus.PRUNED) if n in below and n not in waiting
            else self.latest[n]
            for n in sorted(self.latest)
        )

    @property
    def waiting(self) -> tuple[int, ...]:
        """Trials of a running halving-type search that finished a lower rung and may still be
        promoted: neither pruned nor complete yet."""
        return tuple(sorted(self._below_budget())) if self.live else ()

    def counts(self) -> dict[TrialStatus, int]:
        """Trials per status, of those done: not running (a promoted trial continuing, a
        failed one trained again) and not waiting for their rung to end."""
        busy = {*self.running, *self.waiting}
        return {s: sum(1 for t in self.trials if t.status is s and t.number not in busy) for s in TrialStatus}

    def _below_budget(self) -> set[int]:
        epochs = self.info.get("epochs")
        if self.info.get("strategy") not in _CONTINUING or not isinstance(epochs, int):
            return set()  # another strategy, or a journal that doesn't say
        running = set(self.running)
        return {n for n, t in self.latest.items()
                if t.status is TrialStatus.COMPLETE and n not in running and self.budgets.get(n, epochs) < epochs}

    def result(self) -> SearchResult:
        return SearchResult(
            trials=self.trials,
            objective=str(self.info.get("objective", "score")),
            direction=str(self.info.get("direction", "min")),
            duration=sum(t.duration for t in self.trials),
            axes=tuple(a[0] for a in self.parts.get("axes", [])),
        )

    def report(self, top: int | None = 10) -> str:
        """What ``gridspec show`` prints: the search, its status counts, leaderboard and best."""
        result = self.result()
        counts = self.counts()
        waiting = len(self.waiting)
        where = f"{self.path}: " if self.path else ""
        lines = [
            f"{where}search {self.id} of {self.searches}, started {self.info.get('created', '?')}, "
            f"fingerprint {self.fingerprint}",
            f"{self.info.get('target', '?')}: {self.info.get('description', '')}; objective "
            f"{result.objective} ({result.direction})",
            f"trials: {counts[TrialStatus.COMPLETE]} complete, {counts[TrialStatus.FAILED]} failed, "
            f"{counts[TrialStatus.PRUNED]} pruned, {len(self.running)} running or interrupted"
            + (f", {waiting} waiting for their rung to end" if waiting else ""),
        ]
        ending_text = ending(result, top, summary=False)  # the counts line above says it
        return "\n".join(lines + ([ending_text] if ending_text else []))


def replay(logs: Sequence[Mapping[str, Any]], path: str | None = None) -> list[StoredSearch]:
    """The searches a sequence of logs describes, in order."""
    builders: dict[int, dict[str, Any]] = {}
    for log in logs:
        search, op, number, epochs, body = log["search"], log["op"], log["number"], log["epochs"], log["body"]
        if op == "search":
            builders[search] = {"body": body, "latest": {}, "finished": {}, "started": {}, "budgets": {}}
            continue
        state = builders.get(search)
        if state is None:
            continue  # a trial log without its search: ignore rather than guess
        if op == "start":
            state["started"][number] = epochs
        elif op == "finish":
            trial = Trial.from_dict(body)
            state["latest"][number] = trial
            state["budgets"][number] = epochs
            state["finished"][(number, epochs)] = trial
            if state["started"].get(number) == epochs:
                del state["started"][number]
    return [
        StoredSearch(
            id=search,
            fingerprint=state["body"].get("fingerprint", ""),
            parts=state["body"].get("parts", {}),
            info=state["body"].get("info", {}),
            latest=state["latest"],
            finished=state["finished"],
            running=tuple(sorted(state["started"])),
            searches=len(builders),
            path=path,
            budgets=state["budgets"],
        )
        for search, state in sorted(builders.items())
    ]


# -- the journal of one running search ----------------------------------------------------
class Journal:
    """The search being written: answers "is this proposal already done?" and records events."""

    def __init__(self, backend: JournalBackend, search: StoredSearch, resumed: bool, label: str) -> None:
        self.backend = backend
        self.search = search
        self.resumed = resumed  # an earlier run of this search was found
        self.label = label

    @classmethod
    def begin(
        cls,
        backend: JournalBackend,
        fingerprint: Fingerprint,
        info: Mapping[str, Any],
        *,
        resume: bool = True,
        label: str = "the journal",
    ) -> Journal:
        """Resume the file's latest search if it is this one, or start a new search in it.

        A latest search with another fingerprint is refused with ``resume=True``: its trials
        would be stale. ``resume=False`` starts a new search and keeps the old ones.
        """
        searches = replay(backend.read_logs(), label)
        latest = searches[-1] if searches else None
        if resume and latest is not None:
            if latest.fingerprint == fingerprint.digest:
                return cls(backend, latest, True, label)
            changes = describe_changes(latest.parts, fingerprint.parts)
            done = sum(1 for t in latest.trials if t.status is not TrialStatus.FAILED)
            raise JournalError(
                f"{label} holds a different search (fingerprint {latest.fingerprint}, {done} "
                f"trial{'' if done == 1 else 's'} done): {'; '.join(changes)}. Its results would be stale for this "
                f"search. Pass resume=False (--fresh) to start a new search in the same file "
                f"(the old one is kept), or give another storage path"
            )
        number = (latest.id if latest else 0) + 1
        body = {"fingerprint": fingerprint.digest, "parts": fingerprint.parts, "info": {**info, "created": _now()}}
        backend.append_logs([{"search": number, "op": "search", "number": None, "epochs": None, "time": time.time(), "body": body}])
        search = replay(backend.read_logs(), label)[-1]
        return cls(backend, search, False, label)

    @property
    def previous(self) -> int:
        """How many earlier searches the file holds besides this one."""
        return self.search.id - 1

    def stored(self, number: int, epochs: int) -> Trial | None:
        """The recorded outcome of trial ``number`` trained to ``epochs``, unless it failed."""
        trial = self.search.finished.get((number, epochs))
        return trial if trial is not None and trial.status is not TrialStatus.FAILED else None

    def record_start(self, number: int, epochs: int) -> None:
        self._append("start", number, epochs, {})

    def record_finish(self, trial: Trial, epochs: int) -> None:
        """Durable before it returns: the caller reports the trial only afterwards."""
        self._append("finish", trial.number, epochs, trial.to_dict())

    def _append(self, op: str, number: int, epochs: int, body: dict[str, Any]) -> None:
        self.backend.append_logs(
            [{"search": self.search.id, "op": op, "number": number, "epochs": epochs, "time": time.time(), "body": body}]
        )

    def close(self) -> None:
        self.backend.close()


def open_journal(path: str | os.PathLike[str], fingerprint: Fingerprint, info: Mapping[str, Any], resume: bool = True) -> Journal:
    """The SQLite journal at ``path`` for this search (see ``Journal.begin``)."""
    backend = SQLiteBackend(path)
    try:
        return Journal.begin(backend, fingerprint, info, resume=resume, label=os.fspath(path))
    except BaseException:
        backend.close()
        raise


def load(path: str | os.PathLike[str], search: int | None = None) -> StoredSearch:
    """Read a journal without changing it (safe while a search writes to it); the latest
    search, or search number ``search``."""
    backend = SQLiteBackend(path, writable=False)
    try:
        searches = replay(backend.read_logs(), os.fspath(path))
    finally:
        backend.close()
    if not searches:
        raise JournalError(f"{os.fspath(path)} is a gridspec journal with no search in it yet")
    live = being_written(os.fspath(path))  # only the file's latest search can be the one running
    for s in searches if search is not None else searches[-1:]:
        if search is None or s.id == search:
            return attrs.evolve(s, live=live and s.id == len(searches))
    raise JournalError(f"{os.fspath(path)} has no search {search}; it holds searches 1 to {len(searches)}")
