"""``gridspec show PATH --watch``: follow a search that another process is journaling.

The journal is SQLite in WAL mode, so this reader sees each trial as soon as the search
commits it, without disturbing the writer. The leaderboard is redrawn when something
changed (a live panel in a terminal; in a pipe, one progress line per change), and the
watch returns, after printing the same report as ``gridspec show PATH``, once no process
writes the journal any more: the writer holds an exclusive ``flock`` on the file for as long
as its search runs (``gridspec.journal``), and the watch looks for that lock in
``/proc/locks`` on Linux (elsewhere it tries a shared lock for an instant). A search on
another machine that shares the file over a network filesystem may not show its lock; the
watch then returns at once with the journal as it stands.
"""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

from gridspec.errors import JournalError
from gridspec.journal import StoredSearch, being_written, load
from gridspec.result import TrialStatus
from gridspec.values import display_params

__all__ = ["being_written", "progress_line", "watch"]

_GRACE = 10.0  # seconds a new, still empty file may take to become a journal


def progress_line(stored: StoredSearch) -> str:
    """One line: trials done of the grid's combinations (a halving-type search's trial is
    done once complete, failed or pruned, not after each rung), what runs, and the best so far."""
    waiting = stored.waiting  # a lower rung finished, promotion not decided: not done yet
    counts = stored.counts()
    size = stored.info.get("size")
    of = f" of {size:,}" if isinstance(size, int) else ""
    parts = [f"{counts[TrialStatus.COMPLETE]} complete", f"{counts[TrialStatus.FAILED]} failed"]
    if counts[TrialStatus.PRUNED]:
        parts.append(f"{counts[TrialStatus.PRUNED]} pruned")
    running = ", ".join(str(n) for n in stored.running[:8]) + (" …" if len(stored.running) > 8 else "")
    line = f"{sum(counts.values())}{of} trials ({', '.join(parts)})"
    line += f"; running: trial {running}" if stored.running else "; none running"
    if waiting:
        line += f"; {len(waiting)} waiting for their rung to end"
    result = stored.result()
    if result.completed:
        best = result.best
        line += f"; best so far: trial {best.number} {result.objective} {best.score:.6g} {display_params(best.params)}"
    return line


def _signature(stored: StoredSearch) -> Any:
    return (stored.id, tuple((t.number, t.status, t.epochs) for t in stored.trials), stored.running)


class _Screen:
    """Where the watch draws: a live panel in a terminal, else one line per change."""

    def __init__(self, out: TextIO, live: bool, top: int | None) -> None:
        self.out = out
        self.top = top
        self.live: Any = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(file=out, highlight=False, force_terminal=True), auto_refresh=False,
                             transient=True,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def show(self, stored: StoredSearch, started: float) -> None:
        stamp = time.strftime("%H:%M:%S")
        if self.live is None:
            self.say(f"[{stamp}] {progress_line(stored)}")
            return
        from rich.console import Group
        from rich.text import Text

        watching = f"watching for {time.monotonic() - started:.0f}s, refreshed {stamp} (Ctrl-C to stop)"
        self.live.update(Group(Text(progress_line(stored)), Text(stored.report(top=self.top)), Text(watching)),
                         refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return True


def watch(path: str, out: TextIO, search: int | None = None, top: int | None = 10,
          interval: float = 1.0, live: bool = False) -> StoredSearch:
    """Follow the search in the journal at ``path`` until no process writes it; returns it
    as it finally stands (the caller prints its report)."""
    started = time.monotonic()
    screen = _Screen(out, live, top)
    try:
        if not os.path.exists(path):
            screen.say(f"waiting for {path} to be created by gridspec run --storage {path} (Ctrl-C to stop)")
            while not os.path.exists(path):
                time.sleep(interval)
        seen: Any = None
        appeared = time.time()
        while True:
            writing = being_written(path)  # before reading: a finished search is read complete
            try:
                stored = load(path, search)
            except JournalError:
                # A file just created by `run --storage` is a journal a moment later (its
                # writer holds the lock, or, in its first instant, the file is still empty);
                # any other file that is no journal is said at once, as plain `show` says it.
                fresh = time.time() - appeared < _GRACE and _empty(path)
                if seen is None and (writing or fresh):
                    time.sleep(interval)
                    continue
                raise
            if search is not None and stored.id != stored.searches:
                return stored  # an earlier search of the file: finished by definition
            signature = _signature(stored)
            if signature != seen or screen.live is not None:  # a panel redraws its clock too
                seen = signature
                screen.show(stored, started)
            if not writing:
                return stored
            time.sleep(interval)
    finally:
        screen.close()
