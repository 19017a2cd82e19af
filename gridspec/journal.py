"""The search journal: an append-only log of trial events, replayed to resume a search.

Owns the storage format (docs/journal.md), the tiny backend interface it is written through
(``JournalBackend``: append logs, read logs — Optuna's journal contract), the SQLite backend
and an in-memory one, and the replay that turns logs back into trials. Every value stored is
JSON text — never pickle — so opening a journal someone sent you runs no code.

A file holds one or more searches. Each log row belongs to one search and is one of:

- ``search``: a search began; its body holds the fingerprint and what it explains;
- ``start``: trial ``number`` began training towards ``epochs`` epochs;
- ``finish``: trial ``number`` ended (any status); its body is ``Trial.to_dict()``.

Replay keeps, per trial number, the latest ``finish`` (so a later rung of the same
combination supersedes an earlier one), and per (number, epochs) the finish that answers a
proposal of that budget. A ``start`` with no later ``finish`` is an interrupted trial, which
runs again. Knows nothing of Keras, strategies or executors.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from gridspec.ending import ending
from gridspec.errors import JournalError
from gridspec.fingerprint import Fingerprint, describe_changes, jsonable
from gridspec.result import SearchResult, Trial, TrialStatus
from gridspec.strategies import CONTINUING as _CONTINUING

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "Journal",
    "JournalBackend",
    "MemoryBackend",
    "SQLiteBackend",
    "StoredSearch",
    "being_written",
    "load",
    "open_journal",
    "replay",
]

FORMAT = "gridspec-journal"
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OPS = ("search", "start", "finish")

_SCHEMA = """
CREATE TABLE gridspec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE gridspec_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    search  INTEGER NOT NULL,
    op      TEXT    NOT NULL CHECK (op IN ('search', 'start', 'finish')),
    number  INTEGER,
    epochs  INTEGER,
    time    REAL    NOT NULL,
    body    TEXT    NOT NULL
);
"""


# -- backends ------------------------------------------------------------------------------
class JournalBackend(Protocol):
    """Where logs live. A log is a JSON-ready dict with keys search, op, number, epochs,
    time and body; ``append_logs`` returns only once the logs are durable."""

    def append_logs(self, logs: Sequence[Mapping[str, Any]]) -> None: ...

    def read_logs(self, log_number_from: int = 0) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class MemoryBackend:
    """Logs in a list: the reference backend for the contract tests."""

    def __init__(self) -> None:
        self._logs: list[dict[str, Any]] = []

    def append_logs(self, logs: Sequence[Mapping[str, Any]]) -> None:
        # Round-trip through JSON text, exactly as the SQLite backend stores a body.
        self._logs.extend(_decode(_encode(log)) for log in logs)

    def read_logs(self, log_number_from: int = 0) -> list[dict[str, Any]]:
        return [dict(log) for log in self._logs[log_number_from:]]

    def close(self) -> None:
        """Nothing to release."""


def _encode(log: Mapping[str, Any]) -> tuple[int, str, int | None, int | None, float, str]:
    op = log["op"]
    if op not in _OPS:
        raise ValueError(f"journal op must be one of {_OPS} (got {op!r})")
    body = json.dumps(jsonable(log.get("body", {})), allow_nan=False, separators=(",", ":"))
    return (int(log["search"]), op, log.get("number"), log.get("epochs"), float(log.get("time", time.time())), body)


def _decode(row: Sequence[Any]) -> dict[str, Any]:
    search, op, number, epochs, when, body = row
    return {"search": search, "op": op, "number": number, "epochs": epochs, "time": when, "body": json.loads(body)}


class SQLiteBackend:
    """An SQLite file in WAL mode: one writer (this process), any number of readers.

    ``writable=False`` opens for reading only and never changes the database; beside a
    journal that no search is writing it leaves no ``-wal``/``-shm`` companions either. A file
    that exists must be a gridspec journal of a schema this version reads; it is checked
    before anything is written, and refused untouched otherwise.
    """

    def __init__(self, path: str | os.PathLike[str], *, writable: bool = True) -> None:
        self.path = os.fspath(path)
        self._lock: Any = None
        self._db: Any = None  # sqlite3.Connection once open
        existing = _check_path(self.path, writable)
        sidecars = [self.path + suffix for suffix in ("-wal", "-shm", "-journal")]
        absent = [p for p in sidecars if not os.path.exists(p)]
        try:
            if writable:
                # The lock is taken before SQLite opens the file, even a file this search
                # creates: readers then know that sidecars they see may be this writer's.
                if not existing:
                    open(self.path, "ab").close()  # nothing of SQLite's is open on it yet
                self._lock = _lock_file(self.path)
                if existing:
                    _check_header(self._lock, self.path)
            if writable:
                self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            else:
                # A journal no search is writing, with no -wal left by one, cannot change while
                # it is read: opened immutable, SQLite leaves no -wal/-shm beside it.
                still = existing and not os.path.exists(self.path + "-wal") and not being_written(self.path)
                self._db = sqlite3.connect(f"file:{_uri(self.path)}?mode=ro{'&immutable=1' if still else ''}",
                                           uri=True, timeout=30.0, isolation_level=None)
            if existing:
                _check_journal(self._db, self.path)
            if writable:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")  # a committed trial survives a power cut
                if not existing:
                    self._create()
        except BaseException:
            self.close()
            # A refused file is left as it was: no -wal/-shm left beside it. But sidecars
            # may belong to a search creating this journal while we read it (it holds the
            # lock, or its -wal has frames already): removing them would hide (and, on a
            # crash, lose) that search's trials.
            if existing and (writable or not (_has_frames(self.path + "-wal") or being_written(self.path))):
                for sidecar in absent:
                    with contextlib.suppress(OSError):
                        os.remove(sidecar)
            raise

    def _create(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany(
                "INSERT INTO gridspec_meta (key, value) VALUES (?, ?)",
                [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)), ("created", _now())],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def append_logs(self, logs: Sequence[Mapping[str, Any]]) -> None:
        rows = [_encode(log) for log in logs]
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO gridspec_log (search, op, number, epochs, time, body) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:  # a full disk, a removed file: say so in gridspec's words
            raise JournalError(
                f"cannot write to the journal {self.path} ({exc}); the trials recorded before "
                f"this one are safe in it, and running the same search again resumes from them"
            ) from exc

    def read_logs(self, log_number_from: int = 0) -> list[dict[str, Any]]:
        try:
            rows = self._db.execute(
                "SELECT search, op, number, epochs, time, body FROM gridspec_log ORDER BY id LIMIT -1 OFFSET ?",
                (log_number_from,),
            ).fetchall()
            return [_decode(row) for row in rows]
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise JournalError(
                f"{self.path} is a damaged gridspec journal ({exc}); it was left untouched"
            ) from None

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None
        if self._lock is not None:
            self._lock.close()  # after SQLite's own handle: closing it drops the flock
            self._lock = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _uri(path: str) -> str:
    from urllib.request import pathname2url

    return pathname2url(os.path.abspath(path))


def _check_path(path: str, writable: bool) -> bool:
    """Refuse unusable paths before anything trains; True when the file already exists."""
    if not path.strip() or path == ":memory:":
        raise JournalError(
            f"storage {path!r} is not a file path; give one such as 'search.sqlite' (a journal kept "
            f"in memory would be gone when the search ends: to keep nothing, leave storage out)"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise JournalError(f"storage {path!r} is a directory; give a file path such as {os.path.join(path, 'search.sqlite')!r}")
    if not os.path.exists(path):
        if not writable:
            raise JournalError(f"no journal at {path!r}: the file does not exist")
        if not os.path.isdir(folder):
            raise JournalError(
                f"storage {path!r} is in a directory that does not exist ({folder}); create it "
                f"first (mkdir -p {folder}) or give another path"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise JournalError(f"storage {path!r} cannot be created: directory {folder} is not writable; give another path")
        return False
    if not os.access(path, os.R_OK) or (writable and not os.access(path, os.W_OK)):
        raise JournalError(f"storage {path!r} is not {'writable' if writable else 'readable'}; check its permissions or give another path")
    if writable and not os.access(folder, os.W_OK | os.X_OK):
        # WAL mode keeps PATH-wal and PATH-shm next to the file.
        raise JournalError(f"storage {path!r} is in a directory that is not writable ({folder}); SQLite needs to write files beside it")
    # No open() here: closing a handle of a file that SQLite has open in this process
    # would drop SQLite's locks on it (the header is read through the writer's lock handle).
    if os.path.getsize(path) == 0:
        if not writable and being_written(path):
            raise JournalError(
                f"{path} is being created by a search that has just started; read it again in a "
                f"moment, or follow it with gridspec show {path} --watch"
            )
        if not writable:
            raise JournalError(f"{path} is an empty file, not a gridspec journal")
        return False  # an empty file (e.g. from tempfile) becomes a new journal
    return True


def _not_sqlite(path: str) -> JournalError:
    return JournalError(
        f"{path} is not a gridspec journal (not an SQLite database); it was left untouched. "
        f"Give storage= a new file path or an existing gridspec journal"
    )


def _check_header(handle: Any, path: str) -> None:
    if handle is not None and os.pread(handle.fileno(), len(_SQLITE_MAGIC), 0) != _SQLITE_MAGIC:
        raise _not_sqlite(path)


def _check_journal(db: sqlite3.Connection, path: str) -> None:
    """An existing SQLite file must hold a gridspec journal of a schema we can read."""
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"gridspec_meta", "gridspec_log"} <= tables:
            found = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_"))) or "none"
            raise JournalError(
                f"{path} is an SQLite database but not a gridspec journal (tables: {found}); it "
                f"was left untouched. Give storage= a new file path or an existing gridspec journal"
            )
        meta = dict(db.execute("SELECT key, value FROM gridspec_meta").fetchall())
        check = db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise _not_sqlite(path) from None
        raise JournalError(f"{path} is a damaged or truncated SQLite file ({exc}); it was left untouched") from None
    if meta.get("format") != FORMAT:
        raise JournalError(f"{path} is not a gridspec journal (format {meta.get('format')!r}); it was left untouched")
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise JournalError(f"{path} has an unreadable schema version {meta.get('schema_version')!r}; it was left untouched") from None
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{path} was written by a newer gridspec (journal schema {version}; this version "
            f"reads schema {SCHEMA_VERSION} and older); upgrade gridspec (pip install -U gridspec) "
            f"or give another path"
        )
    if not check or check[0] != "ok":
        raise JournalError(f"{path} is a damaged gridspec journal (integrity check: {check[0] if check else 'no answer'}); it was left untouched")


_UNCLOSED: list[Any] = []


def _has_frames(wal: str) -> bool:
    """A -wal beyond its 32-byte header holds some writer's transactions (a reader never
    writes one)."""
    try:
        return os.path.getsize(wal) > 32
    except OSError:
        return False


def _locked_in_proc(path: str) -> bool | None:
    """Whether ``/proc/locks`` lists a ``flock`` on ``path``; None where there is no such file."""
    try:
        with open("/proc/locks") as f:
            table = f.read()
        st = os.stat(path)
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if "FLOCK" in fields and any(f == dev for f in fields):
            return True
    return False


def being_written(path: str) -> bool:
    """Whether a search holds the journal at ``path`` (writing it, or creating it) right now."""
    if not os.path.exists(path):
        return False
    found = _locked_in_proc(path)  # asks without opening the file
    if found is not None:
        return found
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock to ask
        return False
    try:
        handle = open(path, "rb")
    except OSError:
        return False
    # Never closed: closing a handle of the file drops the POSIX locks that SQLite
    # connections of this process hold on it (a search writing it from this process).
    _UNCLOSED.append(handle)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _lock_file(path: str) -> Any:
    """Hold an exclusive advisory lock while writing: a journal has one writer.

    ``flock`` locks are independent of the POSIX locks SQLite takes on the same file, and
    the handle stays open until the backend closes (closing any handle of the file would
    drop SQLite's POSIX locks), so the two never interfere.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock, the docs ask for one writer
        return None
    handle = open(path, "rb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        # Keep the handle open: closing it would drop the POSIX locks that the writer's
        # SQLite connection holds on this file if that writer is in this same process.
        _UNCLOSED.append(handle)
        raise JournalError(
            f"{path} is being written by another search (one writer per journal); wait for it "
            f"to finish, read it with gridspec show {path}, or give another storage path"
        ) from None
    return handle


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
