"""The live display of ``gridspec run`` in a terminal (and of ``search(verbose=1)``).

A panel refreshed a few times a second, below the plain lines of the finished trials::

    ━━━━━━━━━━━━╸━━━━━━━━━━━━━━━━━  5/12 trials  elapsed 1m02s  ETA 1m27s
    best so far  trial 4  val_loss 0.1234 (epoch 3/3)  lr=0.01, units=32
    running      trial 6  epoch 2/3  batch 13/50  loss 0.2841  val_loss 0.3011  lr=0.1, units=8
    failed       trial 3: ValueError: ...

Each finished trial, failure and note is printed as its plain line above the panel (the
lines of ``gridspec.display.lines``), and the panel is erased when the search ends, so the
terminal is left with exactly what a pipe would have received. Drawn with ``rich``; events
may arrive from the executor's threads (worker progress) and from the Ctrl-C handler, so
the state is guarded by a re-entrant lock that is never held while ``rich`` draws.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

import attrs

from gridspec.display.lines import format_duration, format_event
from gridspec.progress import BatchEnded, EpochEnded, Event, SearchFinished, SearchStarted, TrialFinished, TrialStarted
from gridspec.result import Trial, TrialStatus, better
from gridspec.values import display

__all__ = ["LiveDisplay"]

_BAR_WIDTH = 30
_PARAMS_WIDTH = 80


@attrs.define
class _Running:
    number: int
    params: dict[str, Any]
    epochs: int
    epoch: int = 0  # epochs finished (1-based epoch in progress is epoch + 1)
    batch: int | None = None
    steps: int | None = None
    loss: float | None = None
    objective: float | None = None


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _params(params: dict[str, Any]) -> str:
    """As the leaderboard writes them: ``lr=0.01, act=my_act, reg=L2(l2=0.0001)``."""
    return _short(", ".join(f"{k}={display(v)}" for k, v in params.items()), _PARAMS_WIDTH)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


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
        self.started: float | None = None
        self.search: SearchStarted | None = None
        self.done = 0
        self.running: dict[int, _Running] = {}
        self.best: Trial | None = None
        self.failures: list[Trial] = []
        self.rungs: dict[int, tuple[int, int]] = {}  # halving: epochs of a rung -> (done, size)
        self.rung: int | None = None  # the epochs of the rung in progress

    # -- events ------------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        with self._lock:
            self._update(event)
        if isinstance(event, SearchStarted) and not self._closed:
            self._start()
        line = format_event(event)
        if line is not None:
            self._print(line)
        if isinstance(event, SearchFinished):
            self.close()
        elif isinstance(event, (TrialStarted, TrialFinished)) and self._live is not None:
            self._live.refresh()  # at once, not at the next tick

    def _update(self, event: Event) -> None:
        if isinstance(event, SearchStarted):
            self.search, self.started = event, time.perf_counter()
        elif isinstance(event, TrialStarted):
            self.running[event.number] = _Running(event.number, dict(event.params), event.epochs,
                                                  epoch=event.start_epoch)
            if self._halving():
                done, _ = self.rungs.get(event.epochs, (0, 0))
                self.rungs[event.epochs] = (done, event.total)
                self.rung = event.epochs
        elif isinstance(event, EpochEnded):
            trial = self.running.get(event.number)
            if trial is not None:
                trial.epoch, trial.batch = event.epoch, None
                trial.loss = event.logs.get("loss", trial.loss)
                if self.search is not None:
                    trial.objective = event.logs.get(self.search.objective, trial.objective)
        elif isinstance(event, BatchEnded):
            trial = self.running.get(event.number)
            if trial is not None:
                trial.batch, trial.steps = event.batch, event.steps
                trial.loss = event.logs.get("loss", trial.loss)
        elif isinstance(event, TrialFinished):
            self.done += 1
            ran = self.running.pop(event.trial.number, None)
            self._tell(event.trial)
            if self._halving() and ran is not None:
                done, size = self.rungs.get(ran.epochs, (0, event.total))
                self.rungs[ran.epochs] = (done + 1, size)

    def _halving(self) -> bool:
        return self.search is not None and self.search.strategy not in ("grid", "random")

    def _tell(self, trial: Trial) -> None:
        if trial.status is TrialStatus.FAILED:
            self.failures.append(trial)
        elif trial.score is not None and self.search is not None and (
            self.best is None or self.best.score is None
            or better(trial.score, self.best.score, self.search.direction)
        ):
            self.best = trial

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
            search, done, best = self.search, self.done, self.best
            running = [attrs.evolve(r) for r in self.running.values()]
            failures = list(self.failures)
            rung = (self.rung, *self.rungs[self.rung]) if self.rung in self.rungs else None
            elapsed = time.perf_counter() - self.started if self.started is not None else 0.0
        if search is None:
            return Text("")
        total = max(search.total, done)
        eta = f"ETA {format_duration(elapsed / done * (total - done))}" if 0 < done < total else ""
        head = Table.grid(padding=(0, 2))
        head.add_row(ProgressBar(total=total, completed=done, width=_BAR_WIDTH),
                     Text(f"{done}/{total} trials"), Text(f"elapsed {format_duration(elapsed)}"), Text(eta))
        rows = Table.grid(padding=(0, 2))
        rows.add_column(style="bold", no_wrap=True, min_width=11)
        rows.add_column(no_wrap=True, overflow="ellipsis")  # one line per row, cut at the edge
        if rung is not None:
            epochs, rung_done, size = rung
            rows.add_row("rung", f"{epochs} epoch{'s' if epochs != 1 else ''}: {rung_done} of {size} trained")
        if best is not None:
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
            live.stop()

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        self.close()
