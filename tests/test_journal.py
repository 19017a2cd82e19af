"""The journal's storage contract, without TensorFlow: backends, replay, files refused.

The contract tests run against every backend (Optuna's habit); the file tests pin what a
user sees for a bad path, a foreign or damaged file, and a journal from a newer gridspec.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gridspec.errors import GridSpecError, JournalError
from gridspec.fingerprint import Fingerprint, describe_changes, jsonable, search_fingerprint, token
from gridspec.journal import (
    SCHEMA_VERSION,
    Journal,
    MemoryBackend,
    SQLiteBackend,
    load,
    open_journal,
    replay,
)
from gridspec.result import Trial, TrialStatus

REPO = Path(__file__).resolve().parents[1]


def fp(**parts: object) -> Fingerprint:
    return Fingerprint.from_parts({"axes": [["lr", ["0.1", "0.01"]]], "settings": {"epochs": 2}, **parts})


def trial(number: int, score: float | None = 0.5, status: TrialStatus = TrialStatus.COMPLETE,
          epochs: int = 2, **params: object) -> Trial:
    return Trial(number=number, params=params or {"lr": 0.1}, status=status, score=score,
                 history={"loss": [1.0, score if score is not None else float("nan")]},
                 best_epoch=2 if score is not None else None, epochs=epochs, duration=0.25,
                 error=None if status is not TrialStatus.FAILED else "ValueError: boom",
                 traceback=None if status is not TrialStatus.FAILED else "Traceback ...\nValueError: boom\n")


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    b = MemoryBackend() if request.param == "memory" else SQLiteBackend(tmp_path / "j.sqlite")
    yield b
    b.close()


# -- the backend contract ------------------------------------------------------------------
def log(op: str, number: int | None = None, epochs: int | None = None, body: dict | None = None, search: int = 1) -> dict:
    return {"search": search, "op": op, "number": number, "epochs": epochs, "time": 1.0, "body": body or {}}


def test_backend_reads_back_logs_in_order(backend) -> None:
    backend.append_logs([log("search", body={"fingerprint": "f"}), log("start", 1, 2)])
    backend.append_logs([log("finish", 1, 2, {"x": [1, 2.5, None, "s"]})])
    logs = backend.read_logs()
    assert [entry["op"] for entry in logs] == ["search", "start", "finish"]
    assert logs[2] == {"search": 1, "op": "finish", "number": 1, "epochs": 2, "time": 1.0, "body": {"x": [1, 2.5, None, "s"]}}
    assert backend.read_logs(2) == logs[2:]
    assert backend.read_logs(3) == []


def test_backend_refuses_unknown_ops(backend) -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        backend.append_logs([log("delete", 1)])
    assert backend.read_logs() == []


def test_a_later_finish_of_the_same_trial_supersedes_the_earlier(backend) -> None:
    """Halving records several rungs per combination: replay keeps every rung, and the
    latest one is the trial."""
    journal = Journal.begin(backend, fp(), {})
    journal.record_start(3, 1)
    journal.record_finish(trial(3, 0.9, epochs=1), 1)
    journal.record_start(3, 4)
    journal.record_finish(trial(3, 0.4, epochs=4), 4)
    (search,) = replay(backend.read_logs())
    assert search.latest[3].score == 0.4 and search.latest[3].epochs == 4
    assert search.finished[(3, 1)].score == 0.9
    assert search.running == ()
    assert Journal.begin(backend, fp(), {}).stored(3, 1).score == 0.9


def test_a_start_without_finish_is_an_interrupted_trial(backend) -> None:
    journal = Journal.begin(backend, fp(), {})
    journal.record_start(1, 2)
    journal.record_finish(trial(1), 2)
    journal.record_start(2, 2)
    resumed = Journal.begin(backend, fp(), {})
    assert resumed.resumed and resumed.search.running == (2,)
    assert resumed.stored(1, 2) == trial(1)
    assert resumed.stored(2, 2) is None
    assert resumed.stored(1, 3) is None  # another budget is another proposal


def test_failed_trials_are_kept_but_not_answered_from_the_journal(backend) -> None:
    journal = Journal.begin(backend, fp(), {})
    journal.record_finish(trial(1, None, TrialStatus.FAILED), 2)
    again = Journal.begin(backend, fp(), {})
    assert again.stored(1, 2) is None
    stored = again.search.latest[1]
    assert stored.status is TrialStatus.FAILED
    assert stored.error == "ValueError: boom" and "Traceback" in stored.traceback
    assert math.isnan(stored.history["loss"][1])  # NaN survives, written as strict JSON text


def test_a_trial_round_trips_through_the_journal(backend) -> None:
    class Custom:
        pass

    t = trial(2, 0.125, lr=0.1, layers=(32, 16), cls=Custom, fn=len)
    Journal.begin(backend, fp(), {}).record_finish(t, 2)
    stored = replay(backend.read_logs())[0].latest[2]
    assert attrs_equal_except_params(stored, t)
    assert stored.params["layers"] == [32, 16]
    assert stored.params["cls"].endswith("Custom")  # text, never the class itself
    assert stored.params["fn"] == "builtins.len"


def attrs_equal_except_params(a: Trial, b: Trial) -> bool:
    import attrs

    return attrs.evolve(a, params={}) == attrs.evolve(b, params={})


def test_resume_with_another_fingerprint_says_what_changed(backend) -> None:
    Journal.begin(backend, fp(), {}).record_finish(trial(1), 2)
    changed = Fingerprint.from_parts({"axes": [["lr", ["0.1"]]], "settings": {"epochs": 3}})
    with pytest.raises(JournalError) as info:
        Journal.begin(backend, changed, {}, label="runs/s.sqlite")
    message = str(info.value)
    assert message.startswith("runs/s.sqlite holds a different search")
    assert "grid axis 'lr' changed from [0.1, 0.01] to [0.1]" in message
    assert "epochs changed from 2 to 3" in message
    assert "resume=False (--fresh)" in message
    assert isinstance(info.value, GridSpecError)


def test_fresh_starts_a_new_search_and_keeps_the_old(backend) -> None:
    Journal.begin(backend, fp(), {}).record_finish(trial(1), 2)
    other = Fingerprint.from_parts({"axes": [], "settings": {}})
    fresh = Journal.begin(backend, other, {}, resume=False)
    assert not fresh.resumed and fresh.search.id == 2 and fresh.previous == 1
    assert fresh.stored(1, 2) is None
    searches = replay(backend.read_logs())
    assert [s.id for s in searches] == [1, 2]
    assert searches[0].latest[1] == trial(1)
    # the latest search is the one a plain resume continues
    assert Journal.begin(backend, other, {}).search.id == 2


# -- fingerprints --------------------------------------------------------------------------
def test_tokens_are_stable_across_processes() -> None:
    class Layer:
        pass

    assert token(Layer).endswith("test_tokens_are_stable_across_processes.<locals>.Layer")
    assert " at 0x" not in token(Layer())
    assert token([1, (2,), {"a": 0.5}]) == "[1, (2,), {'a': 0.5}]"
    assert jsonable({"x": float("inf"), "y": (1, 2)}) == {"x": "inf", "y": [1, 2]}


def test_fingerprint_covers_axes_functions_and_settings() -> None:
    def model(lr):
        return lr

    def model2(lr):
        return lr * 2

    base = search_fingerprint([("lr", [0.1])], model, None, None, {"epochs": 1})
    same = search_fingerprint([("lr", [0.1])], model, None, None, {"epochs": 1})
    assert base == same
    assert base != search_fingerprint([("lr", [0.1, 0.2])], model, None, None, {"epochs": 1})
    assert base != search_fingerprint([("lr", [0.1])], model, None, None, {"epochs": 2})
    assert base != search_fingerprint([("lr", [0.1])], model, model2, None, {"epochs": 1})
    changes = describe_changes(base.parts, search_fingerprint([("lr", [0.1])], model2, None, None, {"epochs": 1}).parts)
    assert changes == [f"the model function changed from {__name__}.test_fingerprint_covers_axes_functions_and_settings.<locals>.model "
                       f"to {__name__}.test_fingerprint_covers_axes_functions_and_settings.<locals>.model2"]


# -- the SQLite file -----------------------------------------------------------------------
def written_journal(path: Path) -> Path:
    journal = open_journal(path, fp(), {"objective": "loss", "direction": "min", "target": "m:build"})
    journal.record_start(1, 2)
    journal.record_finish(trial(1, 0.5), 2)
    journal.record_start(2, 2)
    journal.record_finish(trial(2, None, TrialStatus.FAILED), 2)
    journal.close()
    return path


def test_the_journal_holds_no_pickled_bytes(tmp_path: Path) -> None:
    class Custom:
        pass

    path = tmp_path / "j.sqlite"
    journal = open_journal(path, fp(), {})
    journal.record_finish(trial(1, 0.5, cls=Custom, arr=(1, 2)), 2)
    journal.close()
    db = sqlite3.connect(path)
    kinds = {row[0] for row in db.execute(
        "SELECT typeof(search) FROM gridspec_log UNION SELECT typeof(op) FROM gridspec_log "
        "UNION SELECT typeof(body) FROM gridspec_log UNION SELECT typeof(value) FROM gridspec_meta")}
    assert kinds <= {"integer", "text"}
    bodies = [row[0] for row in db.execute("SELECT body FROM gridspec_log")]
    db.close()
    for body in bodies:
        json.loads(body, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    raw = path.read_bytes()
    assert b"\x80\x04\x95" not in raw and b"\x80\x05\x95" not in raw and b"cbuiltins" not in raw


def test_meta_and_rows_are_readable_with_plain_sqlite(tmp_path: Path) -> None:
    db = sqlite3.connect(written_journal(tmp_path / "j.sqlite"))
    meta = dict(db.execute("SELECT key, value FROM gridspec_meta"))
    rows = db.execute("SELECT op, number, epochs FROM gridspec_log ORDER BY id").fetchall()
    db.close()
    assert meta["format"] == "gridspec-journal" and meta["schema_version"] == str(SCHEMA_VERSION)
    assert rows == [("search", None, None), ("start", 1, 2), ("finish", 1, 2), ("start", 2, 2), ("finish", 2, 2)]


def test_show_reports_counts_leaderboard_and_best(tmp_path: Path) -> None:
    stored = load(written_journal(tmp_path / "j.sqlite"))
    text = stored.report()
    assert "search 1 of 1" in text
    assert "trials: 1 complete, 1 failed, 0 pruned, 0 running or interrupted" in text
    assert "Best params found: {'lr': 0.1}" in text
    assert "trial 2 failed: ValueError: boom" in text


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("kind", ["text", "foreign_sqlite", "truncated", "garbage_tail"])
def test_foreign_and_damaged_files_are_refused_untouched(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    path = folder / "j.sqlite"
    if kind == "text":
        path.write_text("name,score\nA,1\n")
        expected = "is not a gridspec journal (not an SQLite database)"
    elif kind == "foreign_sqlite":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE users (name TEXT)")
        db.commit()
        db.close()
        expected = "is an SQLite database but not a gridspec journal (tables: users)"
    else:
        source = written_journal(tmp_path / "source.sqlite")
        data = source.read_bytes()
        if kind == "truncated":
            # Grow it to several pages first, so the cut falls inside the tables.
            journal = open_journal(source, fp(), {})
            for n in range(3, 60):
                journal.record_finish(trial(n, 0.1, note="x" * 200), 2)
            journal.close()
            data = source.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        else:
            path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
        expected = "damaged"
    before = files_of(folder)
    for attempt in (lambda: open_journal(path, fp(), {}), lambda: load(path)):
        with pytest.raises(JournalError) as info:
            attempt()
        assert str(path) in str(info.value)
        assert expected in str(info.value)
        assert "left untouched" in str(info.value)
    assert files_of(folder) == before


def test_a_journal_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = written_journal(tmp_path / "j.sqlite")
    db = sqlite3.connect(path)
    db.execute("UPDATE gridspec_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match=rf"written by a newer gridspec \(journal schema {SCHEMA_VERSION + 1}; "
                                           rf"this version reads schema {SCHEMA_VERSION} and older\); upgrade"):
        open_journal(path, fp(), {})
    assert path.read_bytes() == before


def test_unusable_paths_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"is in a directory that does not exist .*create it first \(mkdir -p"):
        open_journal(tmp_path / "missing" / "j.sqlite", fp(), {})
    with pytest.raises(JournalError, match=r"is a directory; give a file path such as"):
        open_journal(tmp_path, fp(), {})
    with pytest.raises(JournalError, match="no journal at .*: the file does not exist"):
        load(tmp_path / "nothing.sqlite")
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_an_unwritable_directory_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes through mode bits: use a folder the kernel refuses even root
        folder = Path("/proc/self")
        assert not os.access(folder, os.W_OK), "this test needs a folder root can't write"
        with pytest.raises(JournalError, match="is not writable; give another path"):
            open_journal(folder / "j.sqlite", fp(), {})
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(JournalError, match="is not writable; give another path"):
            open_journal(folder / "j.sqlite", fp(), {})
    finally:
        folder.chmod(0o755)


def test_an_empty_file_becomes_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.touch()
    journal = open_journal(path, fp(), {})
    journal.close()
    assert load(path).fingerprint == fp().digest


def test_a_second_writer_is_refused_and_readers_are_welcome(tmp_path: Path) -> None:
    path = written_journal(tmp_path / "j.sqlite")
    writer = open_journal(path, fp(), {})
    try:
        with pytest.raises(JournalError, match="is being written by another search"):
            open_journal(path, fp(), {})
        writer.record_finish(trial(3, 0.25), 2)
        assert sorted(load(path).latest) == [1, 2, 3]  # a reader sees committed trials at once
    finally:
        writer.close()
    open_journal(path, fp(), {}).close()  # the lock went with the writer


def test_show_reads_while_another_process_writes(tmp_path: Path) -> None:
    """A writer process holds the journal open mid-search; ``gridspec show`` reads it."""
    path = tmp_path / "j.sqlite"
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, sys, time
        from gridspec.journal import open_journal
        from gridspec.fingerprint import Fingerprint
        from gridspec.result import Trial, TrialStatus
        fp = Fingerprint.from_parts({{"axes": [["lr", ["0.1", "0.01"]]], "settings": {{"epochs": 2}}}})
        j = open_journal({str(path)!r}, fp, {{"objective": "loss", "direction": "min"}})
        j.record_start(1, 2)
        j.record_finish(Trial(1, {{"lr": 0.1}}, TrialStatus.COMPLETE, 0.5, {{"loss": [0.5]}}, 1, 1), 2)
        j.record_start(2, 2)
        print("ready", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        j.record_finish(Trial(2, {{"lr": 0.01}}, TrialStatus.COMPLETE, 0.25, {{"loss": [0.25]}}, 1, 1), 2)
        j.close()
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        shown = subprocess.run([sys.executable, "-m", "gridspec", "show", str(path)], env=env,
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "trials: 1 complete, 0 failed, 0 pruned, 1 running or interrupted" in shown.stdout
        assert "Best params found: {'lr': 0.1}" in shown.stdout
        assert "Traceback" not in shown.stderr
    finally:
        go.touch()
        assert writer.wait(timeout=60) == 0
    assert "Best params found: {'lr': 0.01}" in load(path).report()


def test_cli_show_refuses_a_foreign_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    shown = subprocess.run([sys.executable, "-m", "gridspec", "show", str(path)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 2
    assert shown.stderr.startswith(f"error: {path} is not a gridspec journal")
    assert "Traceback" not in shown.stderr
    assert path.read_text() == "hello"


def test_a_failed_write_is_a_journal_error_saying_what_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    backend = SQLiteBackend(path)
    journal = Journal.begin(backend, fp(), {}, label=str(path))
    journal.record_finish(trial(1), 2)
    backend._db.execute("PRAGMA query_only = 1")  # stands in for a full disk
    with pytest.raises(JournalError, match=rf"cannot write to the journal {path} \(attempt to write a readonly "
                                           rf"database\); the trials recorded before this one are safe in it"):
        journal.record_finish(trial(2), 2)
    journal.close()
    assert sorted(load(path).latest) == [1]


def test_a_reader_never_removes_the_wal_of_a_search_creating_the_journal(tmp_path, monkeypatch):
    """``gridspec show`` (or ``load``) racing a search's first seconds: the file exists, its
    tables do not yet. The refused read must not delete the writer's -wal/-shm, which would
    hide every later trial from readers and lose them if the search then crashed."""
    import sqlite3

    from gridspec.journal import sqlite as journal  # where SQLiteBackend reads _check_journal

    path = str(tmp_path / "search.sqlite")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")  # a WAL header, and no -wal/-shm yet
    assert os.path.getsize(path) > 0 and not os.path.exists(path + "-wal")
    real_check = journal._check_journal

    def writer_goes_on(db, label):  # between the reader's open and its check
        writer.execute("CREATE TABLE gridspec_early (x)")  # the writer's first transaction
        return real_check(db, label)

    monkeypatch.setattr(journal, "_check_journal", writer_goes_on)
    with pytest.raises(journal.JournalError, match="not a gridspec journal"):
        journal.SQLiteBackend(path, writable=False)
    assert os.path.exists(path + "-wal") and os.path.exists(path + "-shm")
    writer.close()


def test_a_reader_never_removes_the_sidecars_of_a_search_holding_the_lock(tmp_path, monkeypatch):
    """The same race before the writer's first frame: its -wal is still empty, but it holds
    the journal's lock (taken before SQLite creates anything), so a refused read leaves the
    sidecars alone and a later reader sees what the writer commits."""
    import sqlite3

    from gridspec.journal import sqlite as journal  # where SQLiteBackend reads _check_journal

    path = str(tmp_path / "search.sqlite")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.close()  # a WAL database with no tables, and no sidecars
    assert not os.path.exists(path + "-wal") and not os.path.exists(path + "-shm")
    lock = journal._lock_file(path)  # the search creating the journal
    writer = sqlite3.connect(path, isolation_level=None)
    real_check = journal._check_journal

    def writer_begins(db, label):  # between the reader's open and its check
        writer.execute("BEGIN IMMEDIATE")  # the writer's first transaction: no frame yet
        return real_check(db, label)

    monkeypatch.setattr(journal, "_check_journal", writer_begins)
    with pytest.raises(journal.JournalError, match="not a gridspec journal"):
        journal.SQLiteBackend(path, writable=False)
    assert os.path.exists(path + "-wal") and os.path.exists(path + "-shm")
    writer.execute("CREATE TABLE gridspec_early (x)")
    writer.execute("COMMIT")
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert reader.execute("SELECT name FROM sqlite_master").fetchall() == [("gridspec_early",)]
    reader.close()
    writer.close()
    lock.close()


def test_a_journal_in_its_first_instant_is_said_to_be_being_created(tmp_path):
    from gridspec.journal import sqlite as journal

    path = tmp_path / "search.sqlite"
    path.touch()  # what a starting search has made, under its lock, before SQLite writes
    with pytest.raises(JournalError, match="an empty file, not a gridspec journal"):
        load(path)  # nobody holds it: just an empty file
    lock = journal._lock_file(str(path))
    try:
        with pytest.raises(JournalError, match=r"is being created by a search that has just started"):
            load(path)
    finally:
        lock.close()
