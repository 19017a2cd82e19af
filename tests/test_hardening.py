"""What a demanding user tried in 0.1: one test per finding, from its reproduction.

The wrong winner, stale results, silent no-ops and lost outputs. CLI tests run the command
in a subprocess and assert its exit status and that no traceback leaks.
"""

from __future__ import annotations

import ast
import csv
import inspect
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys

import keras
import numpy as np
import pytest

import gridspec as gs
from conftest import ROOT, batches, cli_env, run_cli
from gridspec.errors import GridError, SearchError
from gridspec.result import SearchResult, Trial, TrialStatus

MODULE = '''
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    while True:
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

@gs.val_data
def val():
    rng = np.random.default_rng(1)
    while True:
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, x[:, :1]

@gs.grid(act=["tanh", "relu", "linear"])
def build(act):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])
    m.compile(optimizer="sgd", loss="mse")
    return m
'''
STEPS = ["--steps-per-epoch", "2", "--validation-steps", "1"]


def no_traceback(proc: subprocess.CompletedProcess[str]) -> bool:
    return "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


# -- 1. the direction of higher-is-better Keras metrics ------------------------------------------
HIGHER = {
    "AUC", "Accuracy", "BinaryAccuracy", "BinaryIoU", "CategoricalAccuracy", "ConcordanceCorrelation",
    "CosineSimilarity", "F1Score", "FBetaScore", "IoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU",
    "PearsonCorrelation", "Precision", "PrecisionAtRecall", "R2Score", "Recall", "RecallAtPrecision",
    "SensitivityAtSpecificity", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity", "TopKCategoricalAccuracy", "TrueNegatives", "TruePositives",
}
LOWER = {
    "BinaryCrossentropy", "CategoricalCrossentropy", "CategoricalHinge", "FalseNegatives", "FalsePositives",
    "Hinge", "KLDivergence", "LogCoshError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson", "RootMeanSquaredError",
    "SparseCategoricalCrossentropy", "SquaredHinge",
    "Mean", "Sum", "Metric",  # aggregates of whatever the user feeds them: lower by default
}
REQUIRED = {  # constructor arguments without defaults
    "PrecisionAtRecall": {"recall": 0.5}, "RecallAtPrecision": {"precision": 0.5},
    "SensitivityAtSpecificity": {"specificity": 0.5}, "SpecificityAtSensitivity": {"sensitivity": 0.5},
    "IoU": {"num_classes": 2, "target_class_ids": [0]}, "OneHotIoU": {"num_classes": 2, "target_class_ids": [0]},
    "MeanIoU": {"num_classes": 2}, "OneHotMeanIoU": {"num_classes": 2},
}


def keras_metric_classes() -> list[str]:
    import keras

    return sorted(name for name, c in vars(keras.metrics).items()
                  if inspect.isclass(c) and issubclass(c, keras.metrics.Metric)
                  and name != "MeanMetricWrapper")  # a wrapper of a function: has no name of its own


def test_every_keras_metric_class_is_in_the_vocabulary_table():
    assert set(keras_metric_classes()) == HIGHER | LOWER  # a new Keras metric must be decided here


@pytest.mark.parametrize("name", keras_metric_classes())
def test_direction_of_every_keras_metric(name):
    import keras

    from gridspec.objective import infer_direction

    metric = getattr(keras.metrics, name)(**REQUIRED.get(name, {}))
    expected = "max" if name in HIGHER else "min"
    assert infer_direction(metric.name) == expected, metric.name
    assert infer_direction(f"val_{metric.name}") == expected
    assert infer_direction(f"{metric.name}_1") == expected  # Keras's suffix for a repeated name


@pytest.mark.parametrize("name, expected", [
    ("val_my_auc", "max"), ("acc", "max"), ("val_acc", "max"), ("mae", "min"), ("val_mse", "min"),
    ("loss", "min"), ("val_loss", "min"), ("auc_loss", "min"), ("val_f1", "max"),
])
def test_direction_of_shortcuts_and_user_named_metrics(name, expected):
    from gridspec.objective import infer_direction

    assert infer_direction(name) == expected


def test_binary_iou_objective_picks_the_best_model_and_says_max():
    import keras

    keras.backend.clear_session()  # metric names as in a fresh process: binary_io_u, not binary_io_u_3

    @gs.grid(lr=[0.5, 1e-7])
    def iou_build(lr):
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer=keras.optimizers.SGD(lr), loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryIoU(target_class_ids=[1])])
        return m

    def data():
        rng = np.random.default_rng(0)
        while True:
            x = rng.normal(size=(16, 4)).astype("float32")
            yield x, (x[:, :1] > 0).astype("float32")

    events: list = []
    result = iou_build.search(train=data, val=data, objective="val_binary_io_u", epochs=2,
                              steps_per_epoch=3, validation_steps=1, verbose=events.append)
    assert result.direction == "max"
    scores = [t.score for t in result.trials]
    assert result.best_score == max(scores)
    assert "objective val_binary_io_u (max: higher is better)" in str(_first_line(events))


def _first_line(events: list) -> str | None:
    from gridspec.progress import format_event

    return next(line for e in events if (line := format_event(e)) is not None)


# -- 2. object values on an axis ----------------------------------------------------------------
def test_object_values_are_told_apart_and_a_changed_one_is_not_resumed(write_module, tmp_path):
    source = MODULE.replace('@gs.grid(act=["tanh", "relu", "linear"])\ndef build(act):',
                            'REGS = [keras.regularizers.L2(1e-4), keras.regularizers.L2(10.0)]\n\n'
                            '@gs.grid(reg=REGS)\ndef build(reg):\n    act = "tanh"')
    source = source.replace("keras.layers.Dense(1, activation=act)",
                            "keras.layers.Dense(1, activation=act, kernel_regularizer=reg)")
    path = write_module(source, "objects")
    store = str(tmp_path / "s.sqlite")
    first = run_cli("run", f"{path}:build", *STEPS, "--storage", store, "--csv", str(tmp_path / "r.csv"))
    assert first.returncode == 0, first.stderr
    assert " 0x" not in first.stdout
    assert "reg=L2(l2=0.0001)" in first.stdout and "reg=L2(l2=10.0)" in first.stdout  # the leaderboard
    assert "{'reg': L2(l2=0.0001)}" in first.stdout  # the progress line
    cells = [row["param_reg"] for row in csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text()))]
    assert cells == ["L2(l2=0.0001)", "L2(l2=10.0)"]
    shown = run_cli("show", store)
    assert "L2(l2=0.0001)" in shown.stdout and "L2(l2=10.0)" in shown.stdout and " 0x" not in shown.stdout

    path.write_text(source.replace("keras.regularizers.L2(10.0)", "keras.regularizers.L2(50.0)"))
    changed = run_cli("run", f"{path}:build", *STEPS, "--storage", store)
    assert changed.returncode == 2 and no_traceback(changed)
    assert "holds a different search" in changed.stderr and "grid axis 'reg' changed" in changed.stderr
    assert "already complete" not in changed.stdout


def test_the_fingerprint_tells_object_values_apart():
    import keras

    from gridspec.fingerprint import search_fingerprint

    def fingerprint(stddev: float) -> str:
        inits = [keras.initializers.RandomNormal(stddev=stddev)]
        return search_fingerprint([("init", inits)], test_the_fingerprint_tells_object_values_apart,
                                  None, None, {}).digest

    assert fingerprint(0.01) == fingerprint(0.01)
    assert fingerprint(0.01) != fingerprint(50.0)


# -- 3. --val none / --train none -----------------------------------------------------------------
def test_val_none_and_train_none_mean_what_they_say(write_module):
    path = write_module(MODULE)
    proc = run_cli("run", f"{path}:build", "--steps-per-epoch", "2", "--val", "none", "--max-trials", "1")
    assert proc.returncode == 0, proc.stderr
    assert "objective loss (min: lower is better)" in proc.stdout
    refused = run_cli("run", f"{path}:build", "--steps-per-epoch", "2", "--train", "none")
    assert refused.returncode == 2 and no_traceback(refused)
    assert refused.stderr.startswith("error: --train none: a search needs training data")


# -- 5. a failed trial keeps its cause; show --errors -----------------------------------------------
def test_a_failed_trial_keeps_the_keras_cause_and_show_errors_prints_it(write_module, tmp_path):
    path = write_module(MODULE.replace("keras.Input((4,))", "keras.Input((3,))"))
    store = str(tmp_path / "s.sqlite")
    run = run_cli("run", f"{path}:build", *STEPS, "--storage", store)
    assert run.returncode == 1 and no_traceback(run)
    failed = [line for line in run.stdout.splitlines() if "FAILED" in line]
    cause = "is incompatible with the layer: expected axis -1 of input shape to have value 3"  # line 3
    assert len(failed) == 3 and all(cause in line for line in failed), failed[0]
    assert "\x1b[" not in run.stdout
    shown = run_cli("show", store, "--errors")
    assert shown.returncode == 0, shown.stderr
    assert "errors of the 3 failed trials:" in shown.stdout
    assert shown.stdout.count(cause) >= 3


# -- 6. output paths checked before anything trains ---------------------------------------------------
@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_a_bad_output_path_is_refused_before_training(write_module, tmp_path, option):
    path = write_module(MODULE)
    proc = run_cli("run", f"{path}:build", *STEPS, option, str(tmp_path / "no" / "such" / "r.out"))
    assert proc.returncode == 2 and no_traceback(proc)
    assert proc.stderr.startswith(f"error: {option} {tmp_path / 'no' / 'such' / 'r.out'}: the folder")
    assert "Model " not in proc.stdout
    folder = run_cli("run", f"{path}:build", *STEPS, option, str(tmp_path))
    assert folder.returncode == 2 and "that is a folder" in folder.stderr


# -- 7. and 8. Ctrl-C and SIGTERM keep what finished -----------------------------------------------------
def _stop_on_second_build(write_module, signame: str):
    source = MODULE.replace("def build(act):\n", "def build(act):\n    if act == 'relu':\n"
                            f"        import os, signal\n        os.kill(os.getpid(), signal.{signame})\n")
    return write_module(source)


def _interrupted_run(write_module, tmp_path, signame: str, ignore_sigint: bool = False) -> subprocess.CompletedProcess[str]:
    path = _stop_on_second_build(write_module, signame)
    # --fuse 1: the signal stops the search after the trial in progress; with fused trials
    # the unit is the group in progress (here all three trials: the search would finish)
    args = ["run", f"{path}:build", *STEPS, "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"),
            "--fuse", "1"]
    if ignore_sigint:  # a job started with `&` from a script: SIGINT ignored, SIGTERM to stop it
        proc = subprocess.run([sys.executable, "-m", "gridspec", *args], cwd=ROOT, env=cli_env(),
                              capture_output=True, text=True, timeout=300,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    else:
        proc = run_cli(*args)
    assert no_traceback(proc), proc.stderr
    assert "stopping after the trial in progress is recorded" in proc.stdout
    assert "Model 2 of 3... trial 2 {'act': 'relu'} score" in proc.stdout and "Model 3 of 3" not in proc.stdout
    assert "2 trials (2 complete, 0 failed)" in proc.stdout and "rank" in proc.stdout  # the leaderboard
    assert [t["number"] for t in json.loads((tmp_path / "r.json").read_text())["trials"]] == [1, 2]
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 3
    assert ".result" not in proc.stdout + proc.stderr
    assert proc.stderr.count("search stopped after 2 of 3 trials") == 1
    assert "pass --storage PATH to make a search resumable" in proc.stderr
    assert "resume with" not in proc.stderr  # no journal: nothing to resume
    return proc


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_prints_the_finished_trials_and_writes_the_files(write_module, tmp_path):
    proc = _interrupted_run(write_module, tmp_path, "SIGINT")
    assert proc.returncode == 130
    assert proc.stderr.startswith("interrupted: search stopped")


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["foreground", "sigint-ignored"])
def test_sigterm_is_handled_like_ctrl_c_and_exits_143(write_module, tmp_path, ignore_sigint):
    proc = _interrupted_run(write_module, tmp_path, "SIGTERM", ignore_sigint)
    assert proc.returncode == 143
    assert proc.stderr.startswith("terminated (SIGTERM): search stopped")


# -- 9. an axis is ordered, each value once -------------------------------------------------------------
def test_a_set_axis_and_duplicate_values_are_refused_at_decoration():
    with pytest.raises(GridError) as info:
        gs.grid(act={"relu", "tanh"})
    assert "grid axis 'act' must be an ordered list of candidate values, not a set" in str(info.value)
    assert "act=sorted(" in str(info.value)
    with pytest.raises(GridError) as info:
        gs.grid(units=frozenset(range(10)))
    assert "units=sorted(...)" in str(info.value)
    with pytest.raises(GridError) as info:
        gs.grid(lr=[0.1, 0.01, 0.1])
    assert str(info.value).startswith("grid axis 'lr' lists the value 0.1 twice (positions 1 and 3)")


# -- 10. output stays proportional ---------------------------------------------------------------------
def test_a_huge_axis_prints_a_screenful_and_keeps_the_journal_small(write_module, tmp_path):
    source = MODULE.replace('@gs.grid(act=["tanh", "relu", "linear"])\ndef build(act):',
                            '@gs.grid(seed=range(2_000_000), act=["tanh", "relu"])\ndef build(seed, act):')
    path = write_module(source)
    store = tmp_path / "s.sqlite"
    proc = run_cli("run", f"{path}:build", *STEPS, "--max-trials", "2", "--storage", str(store))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) < 40, proc.stdout
    assert "Searching 2 of 4,000,000 combinations" in proc.stdout
    assert os.path.getsize(store) < 200_000
    fingerprint = sqlite3.connect(store).execute("select body from gridspec_log where op = 'search'").fetchone()[0]
    assert len(fingerprint) < 10_000


def test_effects_list_only_tried_values_and_at_most_a_screenful():
    trials = [Trial(i + 1, {"seed": i, "act": "relu"}, TrialStatus.COMPLETE, score=float(i)) for i in range(30)]
    result = SearchResult(trials=trials, objective="loss", direction="min", axes=("seed", "act"))
    text = str(result.effects())
    assert len(text.splitlines()) < 20
    assert "… 18 more values" in text
    assert [v.value for v in result.effects()["seed"]] == list(range(30))


# -- 11. TensorFlow's Python-side warnings ----------------------------------------------------------------
def test_tensorflow_retracing_warnings_stay_off_the_terminal(write_module, tmp_path):
    source = MODULE.replace('act=["tanh", "relu", "linear"]', 'act=["tanh", "relu", "linear", "sigmoid", "elu", "selu"]')
    path = write_module(source)
    log = tmp_path / "tf.log"
    # --fuse 1: six models fitted one by one make TensorFlow warn about retracing (fused
    # trials trace once per group, so they don't)
    proc = run_cli("run", f"{path}:build", *STEPS, "--fuse", "1", env={"GRIDSPEC_TF_LOG": str(log)})
    assert proc.returncode == 0, proc.stderr
    assert "retracing" not in proc.stderr and "retracing" not in proc.stdout
    assert proc.stderr == ""
    assert "retracing" in log.read_text()  # the warning happened; it went where TensorFlow's log goes


# -- 12. CSV cells and strict JSON --------------------------------------------------------------------------
def test_csv_cells_are_plain_values_and_json_is_strict():
    trials = [
        Trial(1, {"act": "relu", "units": [8, 4]}, TrialStatus.COMPLETE, score=0.5, history={"loss": [0.7, 0.5]}),
        Trial(2, {"act": "tanh", "units": [8, 4]}, TrialStatus.FAILED, history={"loss": [float("nan")]},
              error="ValueError: nan"),
        Trial(3, {"act": "elu", "units": [8, 4]}, TrialStatus.COMPLETE, score=float("inf")),
    ]
    result = SearchResult(trials=trials, objective="loss", direction="min", axes=("act", "units"))
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [row["param_act"] for row in rows] == ["relu", "tanh", "elu"]
    assert rows[0]["param_units"] == "[8, 4]"

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    data = json.loads(result.to_json(), parse_constant=refuse)
    assert data["trials"][1]["history"]["loss"] == [None]
    assert data["trials"][2]["score"] is None


# -- 13. numpy values -----------------------------------------------------------------------------------------
def test_numpy_values_are_plain_python_at_any_depth():
    @gs.grid(shape=[(np.int32(2), np.int64(3))], lr=np.array([0.01, 0.001], dtype="float32"),
             nested=[{"a": [np.float64(0.5)]}])
    def build(shape, lr, nested):
        raise AssertionError("not called")

    combination = build.space[0]
    assert combination == {"shape": (2, 3), "lr": 0.01, "nested": {"a": [0.5]}}
    assert ast.literal_eval(repr(combination)) == combination
    assert type(combination["shape"][0]) is int and build.space[1]["lr"] == 0.001


def test_numpy_integer_settings_are_accepted():
    import keras

    @gs.grid(units=[1])
    def np_build(units):
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
        m.compile(optimizer="sgd", loss="mse")
        return m

    result = np_build.search(train=lambda: batches(0, 10**6), val=None, steps_per_epoch=np.int64(2),
                             epochs=np.int32(1))
    assert result.completed and result.best.epochs == 1


# -- 14. piping into head ---------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX pipes")
def test_a_reader_that_quits_early_ends_quietly_and_the_search_goes_on(write_module, tmp_path):
    path = write_module(MODULE)
    store = str(tmp_path / "s.sqlite")

    def closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
        # like `gridspec ... | head -0`: the reader is gone before the first line is written
        proc = subprocess.Popen([sys.executable, "-m", "gridspec", *args], cwd=ROOT, env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        stderr = proc.stderr.read()
        return subprocess.CompletedProcess(proc.args, proc.wait(timeout=300), "", stderr)

    run = closed_pipe("run", f"{path}:build", *STEPS, "--storage", store)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    shown = run_cli("show", store)
    assert "trials: 3 complete" in shown.stdout  # the search went on to the end
    for args in (("show", store), ("plan", f"{path}:build")):
        quiet = closed_pipe(*args)
        assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


# -- 15. --storage "" and :memory: ----------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["", ":memory:"])
def test_storage_that_is_not_a_file_is_refused(write_module, storage):
    path = write_module(MODULE)
    proc = run_cli("run", f"{path}:build", *STEPS, "--storage", storage)
    assert proc.returncode == 2 and no_traceback(proc)
    assert proc.stderr.startswith(f"error: --storage {storage!r} is not a file path")
    with pytest.raises(gs.JournalError, match="is not a file path"):
        from gridspec.journal import SQLiteBackend

        SQLiteBackend(storage)


# -- rough edges -------------------------------------------------------------------------------------------------
def test_rough_edges(write_module):
    from gridspec.space import Space
    from gridspec.values import a_kind

    assert Space.from_dict({"a": [1]}).describe() == "a (1) = 1 combination"
    assert a_kind(np.zeros(2)) == "an ndarray" and a_kind(1) == "an int" and a_kind([]) == "a list"
    syntax = write_module("def broken(:\n")
    proc = run_cli("run", f"{syntax}:build")
    assert proc.returncode == 2 and proc.stderr.count("line 1") == 1, proc.stderr
    listing = run_cli("list", f"{syntax}:build")
    assert listing.returncode == 2 and "gridspec list takes a module, not module:function" in listing.stderr
    assert "gridspec plan" in listing.stderr and no_traceback(listing)
    trials = [Trial(123456, {"a": 1}, TrialStatus.COMPLETE, score=0.5), Trial(7, {"a": 2}, TrialStatus.COMPLETE, score=0.4)]
    header, *rows = SearchResult(trials=trials, objective="val_binary_io_u", direction="max").leaderboard().splitlines()
    assert {row.index("a=") for row in rows} == {header.index("params")}
    assert {row.index("0.5") + 3 for row in rows[:1]} == {header.index("val_binary_io_u") + len("val_binary_io_u")}


def test_rough_edges_of_in_memory_data():
    import keras

    @gs.grid(units=[1])
    def mem_build(units):
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
        m.compile(optimizer="sgd", loss="mse")
        return m

    def unequal():
        return np.zeros((10, 4), "float32"), np.zeros((9, 1), "float32")

    with pytest.raises(gs.DataError, match=r"data factory 'unequal' \(train_data\) returned arrays with "
                                           r"different numbers of samples \(x has 10, y has 9\)"):
        mem_build.search(train=unequal, val=None)

    def listed():
        return [np.zeros((10, 4), "float32"), np.zeros((10, 2), "float32")], np.zeros((10, 1), "float32")

    with pytest.raises(gs.DataError, match=r"returned x as a list of 2 arrays; .* a dict keyed by the keras.Input names"):
        mem_build.search(train=listed, val=None)


def test_run_help_groups_options_as_a_reader_looks_for_them():
    proc = run_cli("run", "--help")
    assert proc.returncode == 0
    headings = [line.rstrip(":") for line in proc.stdout.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings[-5:] == ["what to train", "how to search", "where trials run", "storage", "output"]
    groups = proc.stdout.split("\nhow to search:")[1]
    assert "--objective KEY" in groups.split("\nwhere trials run:")[0]
    assert "--json PATH" in proc.stdout.split("\noutput:")[1]


# -- a PyDataset (or a list of batches) has a length: it needs no steps_per_epoch -------------
class Batches(keras.utils.PyDataset):
    def __init__(self, seed, count):
        super().__init__()
        self.batches = list(batches(seed, count))

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def pydataset_train():
    return Batches(1, 5)


def pydataset_val():
    return Batches(2, 2)


@gs.grid(lr=[0.05, 0.01])
def pydataset_grid(lr):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def test_a_pydataset_needs_no_steps_and_trains_as_keras_fit_does():
    settings = dict(epochs=3, train=pydataset_train, val=pydataset_val)
    fused, alone = pydataset_grid.search(**settings), pydataset_grid.search(fuse=1, **settings)
    keras.utils.set_random_seed(0)
    model = pydataset_grid.fn(0.05)
    history = model.fit(pydataset_train(), validation_data=pydataset_val(), epochs=3, shuffle=False, verbose=0)
    for result in (fused, alone):
        trial = result.trials[0]
        assert trial.epochs == 3
        for key in ("loss", "val_loss"):
            assert list(trial.history[key]) == pytest.approx(history.history[key], rel=1e-6), key
    # a list of batches is the same data with a length too
    listed = pydataset_grid.search(epochs=3, train=lambda: list(batches(1, 5)), val=lambda: list(batches(2, 2)))
    assert [t.history for t in listed.trials] == [t.history for t in fused.trials]
