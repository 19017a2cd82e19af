"""The SQLite backend: one writer per file (an advisory lock), any number of readers, and
the checks that refuse a file that is not a gridspec journal before anything is written."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gridspec.errors import JournalError
from gridspec.journal.base import _decode, _encode

FORMAT = "gridspec-journal"
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

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

