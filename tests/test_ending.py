"""How a search ended, written once: ``print(result)``, ``gridspec run`` and ``gridspec show``
say it the same way, values as the leaderboard shows them, long values never cut into look-alikes."""

from __future__ import annotations

import ast
import csv
import json
import re

from conftest import run_cli
from gridspec.ending import best_params_text, ending
from gridspec.result import SearchResult, Trial, TrialStatus
from gridspec.values import display, displays, shorten

PREFIX = "runs/2026-12-04/digits-" + "x" * 50
A, B = PREFIX + "-train-a.csv", PREFIX + "-train-b.csv"


def _result(values, key="path", scores=(0.5, 0.7)):
    trials = [Trial(n, {key: v, "lr": 0.1}, TrialStatus.COMPLETE, s, {"val_loss": [s]}, 1, 1)
              for n, (v, s) in enumerate(zip(values, scores), start=1)]
    return SearchResult(trials, "val_loss", "min", axes=(key, "lr"))


# -- long values -------------------------------------------------------------------------------
def test_a_long_value_keeps_both_ends_around_the_ellipsis():
    assert shorten("abcdefghij", 7) == "abc…hij"
    assert display(A).endswith("-train-a.csv'") and display(A).startswith("'runs/2026") and "…" in display(A)
    assert len(display(A)) == 60 and display(A, None) == repr(A)


def test_values_sharing_a_long_beginning_stay_apart_in_the_leaderboard_and_effects():
    result = _result([A, B])
    rows = result.leaderboard().splitlines()[1:]
    assert len(rows) == 2 and rows[0].split("  ")[-1] != rows[1].split("  ")[-1]
    assert "-train-a.csv'" in rows[0] and "-train-b.csv'" in rows[1]
    effects = str(result.effects()).splitlines()
    assert "  path: spread 0.2" in effects
    shown = [line for line in effects if "-train-" in line]
    assert len(shown) == 2 and "-train-a.csv'" in shown[0] and "-train-b.csv'" in shown[1]


def test_values_that_differ_only_in_the_middle_are_shown_whole():
    c, d = "p" * 80 + "1" + "s" * 80, "p" * 80 + "2" + "s" * 80
    assert displays([c, d]) == [repr(c), repr(d)]
    assert displays([A, "short"]) == [display(A), "'short'"]  # nothing clashes: cut as usual
    rows = _result([c, d]).leaderboard().splitlines()[1:]
    assert repr(c) in rows[0] and repr(d) in rows[1]


def test_objects_that_show_alike_are_numbered():
    first, second = lambda x: x, lambda x: x  # noqa: E731 - two values that both show as <lambda>
    assert displays([first, second]) == ["<lambda>#1", "<lambda>#2"]


def test_best_params_found_is_never_cut_and_reads_back():
    text = str(_result([A, B])).splitlines()[0]
    assert text.startswith("Best params found: ")
    assert ast.literal_eval(text.removeprefix("Best params found: ")) == {"path": A, "lr": 0.1}


# -- one renderer ------------------------------------------------------------------------------
def _my_act(x):
    return x


def test_print_result_shows_values_as_the_leaderboard_does():
    import keras

    trials = [
        Trial(1, {"act": _my_act, "reg": keras.regularizers.L2(1e-4)}, TrialStatus.COMPLETE, 0.5,
              {"val_loss": [0.5]}, 1, 1),
        Trial(2, {"act": "relu", "reg": None}, TrialStatus.FAILED, error="ValueError: first\n  the cause"),
    ]
    text = str(SearchResult(trials, "val_loss", "min", axes=("act", "reg")))
    assert " at 0x" not in text
    assert text.splitlines()[:2] == ["Best params found: {'act': _my_act, 'reg': L2(l2=0.0001)}",
                                     "Best score: val_loss 0.5 (trial 1)"]
    assert "act=_my_act, reg=L2(l2=0.0001)" in text  # the leaderboard: the same words
    assert text.splitlines()[-1] == "trial 2 failed: ValueError: first the cause"


def test_best_params_text_is_the_repr_when_it_reads_back_and_readable_otherwise():
    assert best_params_text({"lr": 0.1, "act": "relu", "units": [8, 4]}) == "{'lr': 0.1, 'act': 'relu', 'units': [8, 4]}"
    assert best_params_text({"lr": float("nan")}) == "{'lr': nan}"  # not a literal: the readable form
    assert best_params_text({"f": _my_act}) == "{'f': _my_act}"


def test_nothing_completed_ends_without_best_lines():
    trials = [Trial(1, {"lr": 0.1}, TrialStatus.FAILED, error="ValueError: no")]
    assert ending(SearchResult(trials, "val_loss", "min")).splitlines() == [
        "1 trials (0 complete, 1 failed) in 0.0s; objective val_loss (min)", "trial 1 failed: ValueError: no"]


CLASSES = '''
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

@gs.grid(opt=[keras.optimizers.SGD, keras.optimizers.Adam], lr=[0.01, 0.1])
def build(opt, lr):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    m.compile(optimizer=opt(lr), loss="mse")
    return m
'''


def test_run_show_and_the_files_say_the_same(write_module, tmp_path):
    path = write_module(CLASSES)
    storage, out_json, out_csv = tmp_path / "s.sqlite", tmp_path / "r.json", tmp_path / "r.csv"
    run = run_cli("run", f"{path}:build", "--steps-per-epoch", "2", "--storage", str(storage),
                  "--json", str(out_json), "--csv", str(out_csv))
    assert run.returncode == 0, run.stderr
    shown = run_cli("show", str(storage))
    assert shown.returncode == 0, shown.stderr
    lines, show_lines = run.stdout.splitlines(), shown.stdout.splitlines()
    best = next(i for i, line in enumerate(lines) if line.startswith("Best params found: "))
    assert re.fullmatch(r"Best params found: \{'opt': (SGD|Adam), 'lr': 0\.0?1\}", lines[best])  # no address
    assert lines[best + 2].startswith("4 trials (4 complete, 0 failed)") and lines[best + 3].startswith("rank")
    # show says the same after its own counts line: best params (as stored), best score, leaderboard
    assert show_lines[2].startswith("trials: 4 complete") and show_lines[3].startswith("Best params found: {'opt': '")
    assert show_lines[4] == lines[best + 1] and show_lines[5] == lines[best + 3]
    assert [row.split()[:4] for row in show_lines[6:10]] == [row.split()[:4] for row in lines[best + 4:best + 8]]
    # classes are written by name in both files, as docs/results.md says
    records = json.loads(out_json.read_text())
    assert {t["params"]["opt"] for t in records["trials"]} == {"SGD", "Adam"}
    assert {row["param_opt"] for row in csv.DictReader(out_csv.open())} == {"SGD", "Adam"}
