"""The displays under fusion and with rungs: progress in epochs summed over trials, an ETA,
the best running score, a line per group of trials, and rung counts that add up."""

from __future__ import annotations

import io
import itertools
import re

import pytest

from conftest import run_cli
from gridspec.display.lines import Printer
from gridspec.display.live import LiveDisplay
from gridspec.display.tally import Tally, numbers_text
from gridspec.progress import BatchEnded, EpochEnded, SearchStarted, TrialFinished, TrialStarted
from gridspec.result import Trial, TrialStatus
from gridspec.strategies import Decision, Proposal, make_strategy, nothing_to_cut


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _trial(number: int, score: float | None, group: tuple[int, ...] = (), epochs: int = 3) -> Trial:
    status = TrialStatus.COMPLETE if score is not None else TrialStatus.FAILED
    return Trial(number, {"lr": number / 100}, status, score, {"val_loss": [score or 0.0] * epochs},
                 epochs if score is not None else None, epochs, duration=1.0,
                 error=None if score is not None else "ValueError: boom",
                 fused_with=tuple(n for n in group if n != number))


def _render(display: LiveDisplay) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(display.render())
    return re.sub(r" +", " ", buffer.getvalue())


GROUP = tuple(range(1, 13))


def _fused_search(display, clock: Clock) -> None:
    """A 12-trial grid trained as one fused group of 3 epochs, up to the second epoch."""
    display(SearchStarted(12, 12, "val_loss", "min", "grid", "lr (12)", epochs=3, planned_epochs=36))
    for n in GROUP:
        display(TrialStarted(n, 12, n, {"lr": n / 100}, 3, group=GROUP))
    clock.now += 10
    for n in GROUP:
        display(EpochEnded(n, 1, 3, {"loss": 1.0, "val_loss": 1.0 / n}))


def test_the_bar_moves_and_the_best_running_trial_shows_while_a_fused_group_trains():
    clock = Clock()
    display = LiveDisplay(io.StringIO())
    display.tally = Tally(clock)
    try:
        _fused_search(display, clock)
        clock.now += 6
        for n in GROUP:
            display(BatchEnded(n, 2, 5, 10, {"loss": 0.5}))
        text = _render(display)
        # no trial has finished, yet one and a half epochs of every trial are trained; the pace
        # counts from the first epoch seen (building and tracing come before it): 17 epochs in 6s
        assert re.search(r"0/12 trials 18 of 36 epochs elapsed 16\.0s ETA 6\.4s", text), text
        assert "best so far trial 12 val_loss 0.0833333 (epoch 1/3, training) lr=0.12" in text
        assert "running trial 1 epoch 2/3 batch 5/10 loss 0.5 val_loss 1 lr=0.01" in text
    finally:
        display.close()


def test_the_plain_lines_say_when_a_group_starts_how_long_it_took_and_the_eta():
    clock, out = Clock(), io.StringIO()
    printer = Printer(out)
    printer.tally = Tally(clock)
    _fused_search(printer, clock)
    clock.now += 20
    for n in GROUP:
        printer(TrialFinished(n, 12, _trial(n, 1.0 / n, GROUP), None))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Searching 12 combinations (grid): lr (12); epochs=3; objective val_loss")
    assert lines[1] == "Training trials 1-12 together, epochs 1-3"
    assert lines[2] == "Model 1 of 12... trial 1 {'lr': 0.01} score 1 (epoch 3/3) in a group of 12"
    assert lines[-1] == "Trials 1-12 trained together in 30.0s"  # nothing left: no ETA
    assert len(lines) == 15


def test_a_group_that_leaves_work_behind_says_the_eta():
    clock, out = Clock(), io.StringIO()
    printer = Printer(out)
    printer.tally = Tally(clock)
    printer(SearchStarted(4, 4, "val_loss", "min", "grid", "lr (4)", epochs=2, planned_epochs=8))
    for n in (1, 2):
        printer(TrialStarted(n, 4, n, {"lr": n}, 2, group=(1, 2)))
    for epoch in (1, 2):
        clock.now += 3
        for n in (1, 2):
            printer(EpochEnded(n, epoch, 2, {"loss": 1.0, "val_loss": 1.0}))
    for n in (1, 2):
        printer(TrialFinished(n, 4, _trial(n, 0.5, (1, 2), epochs=2), None))
    # 3 epochs in the 3s since the first one ended; 4 epochs left
    assert out.getvalue().splitlines()[-1] == "Trials 1, 2 trained together in 6.0s, ETA 4.0s"


def test_the_first_line_names_the_epochs_and_says_when_it_is_the_default():
    out = io.StringIO()
    Printer(out)(SearchStarted(2, 2, "loss", "min", "grid", "lr (2)", epochs=1, planned_epochs=2))
    assert "; epochs=1 (default); objective loss" in out.getvalue()


def test_hyperband_rungs_are_counted_apart_and_trials_in_training_are_not_done():
    display = LiveDisplay(io.StringIO())
    try:
        display(SearchStarted(4, 4, "val_loss", "min", "hyperband", "lr (4)", epochs=9, planned_epochs=16))
        # bracket 1: rung 0 (1 epoch, 3 trials); bracket 2: rung 3 (9 epochs, 1 trial), sent meanwhile
        for n in (1, 2, 3):
            display(TrialStarted(n, 3, n, {"lr": n}, 1, rung=0))
        display(TrialStarted(4, 1, 4, {"lr": 4}, 9, rung=3))
        display(TrialFinished(1, 3, _trial(1, 0.5, epochs=1), None))
        text = _render(display)
        assert "rung 1 epoch: 1 of 3 trained" in text and "rung 9 epochs: 0 of 1 trained" in text
        assert "1/4 trials" in text
        for n in (2, 3):
            display(TrialFinished(n, 3, _trial(n, 0.6, epochs=1), None))
        display(TrialStarted(1, 1, 1, {"lr": 1}, 9, start_epoch=1, rung=1))  # promoted, in bracket 1
        text = _render(display)
        assert "rung 1 epoch" not in text  # that rung is over
        assert "rung 9 epochs: 0 of 1 trained" in text and text.count("rung 9 epochs") == 2
        assert "2/4 trials" in text  # trials 1 and 4 train
    finally:
        display.close()


def test_numbers_are_joined_into_runs():
    assert numbers_text((1, 2, 3, 4)) == "1-4"
    assert numbers_text((30, 4, 6)) == "4, 6, 30"
    assert numbers_text((1, 2, 5, 7, 8, 9)) == "1, 2, 5, 7-9"


@pytest.mark.parametrize("name", ["grid", "random", "halving", "hyperband"])
def test_the_planned_epochs_are_the_epochs_the_strategy_hands_out(name):
    for size, epochs, eta in itertools.product([1, 3, 5, 12, 48], [1, 2, 3, 9, 27], [2, 3]):
        options = {} if name in ("grid", "random") else {"eta": eta}
        plan = make_strategy(name, size=size, epochs=epochs, max_trials=None, seed=1, **options)
        spent = 0
        while isinstance(proposal := plan.ask(), Proposal):
            spent += proposal.epochs - proposal.start_epoch
            plan.tell(proposal, float(proposal.index * 7919 % 13))
        assert proposal is Decision.STOP and spent == plan.planned_epochs(), (size, epochs, eta)


def test_a_budgeted_strategy_with_one_rung_says_it_has_nothing_to_cut():
    for name in ("halving", "asha", "hyperband"):
        note = nothing_to_cut(name, make_strategy(name, size=4, epochs=1, max_trials=None, seed=0))
        assert note is not None and note.startswith(f"note: {name} has nothing to cut: with epochs=1")
        assert nothing_to_cut(name, make_strategy(name, size=4, epochs=3, max_trials=None, seed=0)) is None
    assert nothing_to_cut("grid", make_strategy("grid", size=4, epochs=1, max_trials=None, seed=0)) is None


TINY = '''
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

@gs.grid(act=["tanh", "relu", "linear"])
def build(act):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])
    m.compile(optimizer="sgd", loss="mse")
    return m
'''


def test_the_cli_says_the_default_epochs_the_group_and_that_hyperband_cuts_nothing(write_module):
    path = write_module(TINY)
    proc = run_cli("run", f"{path}:build", "--steps-per-epoch", "2", "--strategy", "hyperband")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "; epochs=1 (default); objective loss" in lines[0]
    assert lines[1].startswith("note: hyperband has nothing to cut: with epochs=1")
    assert sum(line.startswith("note: hyperband has nothing to cut") for line in lines) == 1
    assert lines[2] == "Training trials 1-3 together, epoch 1"
    assert re.fullmatch(r"Trials 1-3 trained together in [0-9.]+s", lines[6]), lines
