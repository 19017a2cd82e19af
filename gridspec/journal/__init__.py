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

from gridspec.journal.base import JournalBackend, MemoryBackend
from gridspec.journal.sqlite import FORMAT, SCHEMA_VERSION, SQLiteBackend, being_written
from gridspec.journal.storage import Journal, StoredSearch, load, open_journal, replay

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
