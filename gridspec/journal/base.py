"""The journal's backend contract (``JournalBackend``: append logs, read logs — Optuna's
journal contract) and ``MemoryBackend``, the reference the contract tests run against.
Every body is stored as JSON text, never pickle."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gridspec.fingerprint import jsonable

_OPS = ("search", "start", "finish")


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

