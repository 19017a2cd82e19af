"""The live display of ``gridspec run`` in a terminal (and of ``search(verbose=1)``).

A panel refreshed a few times a second, below the plain lines of the finished trials::

    ━━━━━━━━━━━━╸━━━━━━━━━━━━━━━━━  5/12 trials  15 of 36 epochs  elapsed 1m02s  ETA 1m27s
    rung         3 epochs: 1 of 4 trained
    best so far  trial 4  val_loss 0.1234 (epoch 3/3)  lr=0.01, units=32
    running      trial 6  epoch 2/3  batch 13/50  loss 0.2841  val_loss 0.3011  lr=0.1, units=8
    failed       trial 3: ValueError: ...

The bar counts epochs summed over trials (``gridspec.display.tally``), so it moves while a
fused group trains; "best so far" is a running trial's best epoch when no finished trial
beats it.

Each finished trial, failure and note is printed as its plain line above the panel (the
lines of ``gridspec.display.lines``), and the panel is erased when the search ends, so the
terminal is left with exactly what a pipe would have received. Drawn with ``rich``; events
may arrive from the executor's threads (worker progress) and from the Ctrl-C handler, so
the state is guarded by a re-entrant lock that is never held while ``rich`` draws. A Ctrl-C
note comes from the signal handler, on the main thread, possibly in the middle of that
thread's own drawing: its line is then held back and printed when the drawing ends, so it
never lands inside a half-drawn panel (which would leave a panel line on the screen).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TextIO

import attrs

from gridspec.display.lines import format_duration, format_event
from gridspec.display.tally import Tally
from gridspec.progress import Event, SearchFinished, SearchStarted, TrialFinished, TrialStarted
from gridspec.values import display

__all__ = ["LiveDisplay"]

_BAR_WIDTH = 30
_PARAMS_WIDTH = 80


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _params(params: dict[str, Any]) -> str:
    """As the leaderboard writes them: ``lr=0.01, act=my_act, reg=L2(l2=0.0001)``."""
    return _short(", ".join(f"{k}={display(v)}" for k, v in params.items()), _PARAMS_WIDTH)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _count(amount: float) -> str:
    return f"{amount:.0f}" if abs(amount - round(amount)) < 0.05 or amount >= 100 else f"{amount:.1f}"


class LiveDisplay:
    """The live view of one search; a callable that gets the search's events."""

    wants_batches = True  # the running trials' batches are shown (throttled by the sender)

    def __init__(self, stream: TextIO | None = None, refresh_per_second: float = 4) -> None:
        from rich.console import Console

        self.stream = stream or sys.stdout
        # a terminal, as ``live_possible`` decided: rich must not second-guess it from the
        # environment (TTY_COMPATIBLE=0 and the like would leave a blank panel)
        self.console = Console(file=self.stream, highlight=False, emoji=False)
        if not self.console.is_jupyter:
            self.console = Console(file=self.stream, highlight=False, emoji=False, force_terminal=True)
        self.refresh_per_second = refresh_per_second
        self._lock = threading.RLock()  # re-entered by a Ctrl-C note from the signal handler
        self._live: Any = None
        self._closed = False
        self.tally = Tally()
        self._drawing = threading.local()  # this thread's depth of drawing in progress
        self._held: list[str] = []  # lines that arrived in the middle of a drawing

    # -- events ------------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        with self._lock:
            extra = self.tally.update(event)
        line = format_event(event)
        texts = ([] if line is None else [line]) + extra
        if getattr(self._drawing, "depth", 0):  # a signal handler's, inside this thread's drawing
            self._held.extend(texts)
            return
        with self._draws():
            if isinstance(event, SearchStarted) and not self._closed:
                self._start()
            for text in texts:
                self._print(text)
            if isinstance(event, SearchFinished):
                self.close()
            elif isinstance(event, (TrialStarted, TrialFinished)) and self._live is not None:
                self._live.refresh()  # at once, not at the next tick

    @contextlib.contextmanager
    def _draws(self) -> Iterator[None]:
        """Marks this thread as drawing; lines held back meanwhile are printed at its end."""
        self._drawing.depth = getattr(self._drawing, "depth", 0) + 1
        try:
            yield
        finally:
            self._drawing.depth -= 1
        while self._drawing.depth == 0 and self._held:
            text = self._held.pop(0)
            with self._draws():
                self._print(text)

    # -- drawing -----------------------------------------------------------------------------
    def _start(self) -> None:
        from rich.live import Live

        if self._live is not None:
            return
        self._live = Live(get_renderable=self.render, console=self.console, transient=True,
                          refresh_per_second=self.refresh_per_second,
                          redirect_stdout=self.stream is sys.stdout,  # user prints go above the panel
                          redirect_stderr=False)
        self._live.start()

    def _print(self, line: str) -> None:
        if self._live is not None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True, emoji=False)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def render(self) -> Any:
        """The panel as a ``rich`` renderable (what the terminal shows below the lines)."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            tally = self.tally
            search, best = tally.search, tally.best
            running = [attrs.evolve(r) for r in tally.running.values()]
            leader = tally.best_running()
            leader = attrs.evolve(leader) if leader is not None else None
            failures = list(tally.failures)
            rungs = tally.rungs_in_progress()
            done, planned = tally.progress()
            trials = tally.trials_done()
            eta = tally.eta()
            elapsed = tally.clock() - tally.started if tally.started is not None else 0.0
        if search is None:
            return Text("")
        head = Table.grid(padding=(0, 2))
        counts = [Text(f"{trials}/{max(search.total, trials)} trials")]
        if search.planned_epochs is not None:  # the bar's own unit: it moves as epochs end
            counts.append(Text(f"{_count(done)} of {_count(planned)} epochs"))
        head.add_row(ProgressBar(total=max(planned, 1e-9), completed=done, width=_BAR_WIDTH), *counts,
                     Text(f"elapsed {format_duration(elapsed)}"),
                     Text(f"ETA {format_duration(eta)}" if eta is not None else ""))
        rows = Table.grid(padding=(0, 2))
        rows.add_column(style="bold", no_wrap=True, min_width=11)
        rows.add_column(no_wrap=True, overflow="ellipsis")  # one line per row, cut at the edge
        for epochs, trained, size in rungs:
            rows.add_row("rung", f"{epochs} epoch{'s' if epochs != 1 else ''}: {trained} of {size} trained")
        if leader is not None:
            rows.add_row("best so far", f"trial {leader.number}  {search.objective} {leader.best:.6g} "
                         f"(epoch {leader.best_epoch}/{leader.epochs}, training)  {_params(leader.params)}")
        elif best is not None:
            rows.add_row("best so far", f"trial {best.number}  {search.objective} {best.score:.6g} "
                         f"(epoch {best.best_epoch}/{best.epochs})  {_params(best.params)}")
        for r in sorted(running, key=lambda r: r.number):
            at = f"epoch {min(r.epoch + 1, r.epochs)}/{r.epochs}"
            if r.batch is not None:
                at += f"  batch {r.batch}" + (f"/{r.steps}" if r.steps else "")
            values = f"  loss {_number(r.loss)}" if r.loss is not None else ""
            if r.objective is not None and search.objective != "loss":
                values += f"  {search.objective} {_number(r.objective)}"
            rows.add_row("running", f"trial {r.number}  {at}{values}  {_params(r.params)}")
        if failures:
            last = failures[-1]
            more = f" ({len(failures)} failed so far)" if len(failures) > 1 else ""
            rows.add_row("failed", _short(f"trial {last.number}: {last.error}", 100) + more)
        return Group(head, rows)

    # -- the end -----------------------------------------------------------------------------
    def close(self) -> None:
        """Erase the panel (the plain lines stay); later events print plain lines."""
        self._closed = True
        live, self._live = self._live, None
        if live is not None:
            with self._draws():
                live.stop()

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        self.close()
