"""The command line as a user runs it: a subprocess, its output lines and its exit status."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, finish_cli, run_cli, start_cli

CHATTER = re.compile(r"Traceback|absl::InitializeLog|cudart_stub|cpu_feature_guard|tensorflow/core")

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

@gs.grid(act=["tanh", "relu"])
def build(act):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=act)])
    m.compile(optimizer="sgd", loss="mse")
    return m
'''


def test_run_the_seed_example(tmp_path):
    proc = run_cli("run", "examples/seed_grid.py:build", "--epochs", "1", "--steps-per-epoch", "3",
                   "--validation-steps", "1", "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    model_lines = [line for line in lines if line.startswith("Model ")]
    assert [line.split("...")[0] for line in model_lines] == [f"Model {i} of 12" for i in range(1, 13)]
    assert "{'lr': 0.001, 'loss': 'mean_squared_error', 'act_in': 'relu', 'act_out': 'tanh'}" in model_lines[0]
    # the 12 trials trained as one fused group: each line says so instead of a share of the
    # group's time, and the group's own line follows with its time (no ETA: nothing remains;
    # one trial at a time, each line has its time and ETA: tests/test_journal_search.py)
    assert re.search(r"score [0-9.e-]+ \(epoch 1/1\) in a group of 12$", model_lines[0])
    assert lines[1] == "Training trials 1-12 together, epoch 1"
    assert re.fullmatch(r"Trials 1-12 trained together in [0-9.]+s", lines[lines.index(model_lines[-1]) + 1])
    best = [line for line in lines if line.startswith("Best params found: ")]
    assert len(best) == 1
    params = ast.literal_eval(best[0].removeprefix("Best params found: "))
    assert set(params) == {"lr", "loss", "act_in", "act_out"}
    assert lines.index(best[0]) > lines.index(model_lines[-1])
    assert "rank" in proc.stdout  # the leaderboard
    assert not CHATTER.search(proc.stderr), proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["best_params"] == params
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 13


def test_python_dash_m_and_max_trials(write_module):
    path = write_module(TINY)
    proc = run_cli("run", f"{path}:build", "--steps-per-epoch", "2", "--max-trials", "1")
    assert proc.returncode == 0, proc.stderr
    assert "Model 1 of 1... trial 1 {'act': 'tanh'}" in proc.stdout


def test_all_trials_failed_exits_1(write_module):
    path = write_module(TINY.replace('act=["tanh", "relu"]', 'act=["nope1", "nope2"]'))
    proc = run_cli("run", f"{path}:build", "--steps-per-epoch", "2")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: all 2 trials failed")
    assert "nope1" in proc.stderr
    assert "FAILED" in proc.stdout
    assert not CHATTER.search(proc.stderr)


@pytest.mark.parametrize(
    "source, target_suffix, args, phrase",
    [
        (TINY, ":nothing", [], "no @grid function 'nothing'"),
        (TINY, ":build", [], "steps_per_epoch is required"),
        (TINY.replace('act=["tanh", "relu"]', 'act="tanh"'), ":build", ["--steps-per-epoch", "2"],
         "grid axis 'act' must be a list of candidate values, such as act=['tanh']"),
        ("import numpy as np\ndef broken(:\n", ":build", [], "SyntaxError"),
        ("import no_such_package_xyz\n", ":build", [], "ModuleNotFoundError: No module named 'no_such_package_xyz'"),
        (TINY, ":build", ["--steps-per-epoch", "2", "--strategy", "bayes"], "unknown strategy 'bayes'"),
        (TINY, ":build", ["--steps-per-epoch", "2", "--objective", "accuracy"], "objective 'accuracy' is not in the training history"),
    ],
    ids=["missing-function", "missing-steps", "scalar-axis", "syntax-error", "import-error", "bad-strategy", "bad-objective"],
)
def test_user_errors_exit_2_without_traceback(write_module, source, target_suffix, args, phrase):
    path = write_module(source)
    proc = run_cli("run", f"{path}{target_suffix}", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ")
    assert phrase in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_usage_errors_exit_2():
    assert run_cli("run").returncode == 2
    assert run_cli("run", "no_colon_here").returncode == 2
    assert run_cli("run", "x.py:build", "--epochs", "0").returncode == 2
    missing = run_cli("run", "does/not/exist.py:build")
    assert missing.returncode == 2 and "no such Python file" in missing.stderr


def test_a_misspelt_option_gets_the_run_usage_and_a_suggestion():
    proc = run_cli("run", "x.py:build", "--stratgy", "halving")
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: gridspec run ")
    assert "unrecognized arguments: --stratgy halving; did you mean '--strategy'?" in proc.stderr


def test_setting_errors_speak_flags_on_the_command_line(write_module):
    path = write_module(TINY)
    proc = run_cli("run", f"{path}:build", "--eta", "3")
    assert proc.returncode == 2
    assert proc.stderr == ("error: --eta tunes successive halving; it needs --strategy halving, asha or hyperband "
                           "(got --strategy grid, --eta 3)\n")
    endless = run_cli("run", f"{path}:build")
    assert endless.returncode == 2 and endless.stderr.rstrip().endswith("; pass --steps-per-epoch N")


def test_run_options_and_their_settings_come_from_the_settings_fields():
    import attrs

    from gridspec.cli import build_parser, settings_from_flags
    from gridspec.settings import SearchSettings

    args = build_parser().parse_args(["run", "x.py:build", "--epochs", "3", "--fresh", "--trial-cpus", "2",
                                      "--val", "none", "--fuse", "auto", "--gpus", "0,1", "--tensorboard", "logs"])
    assert settings_from_flags(args) == {"epochs": 3, "resume": False, "trial_resources": {"num_cpus": 2.0},
                                         "val": None, "fuse": "auto", "gpus": (0, 1), "tensorboard_dir": "logs"}
    assert settings_from_flags(build_parser().parse_args(["run", "x.py:build"])) == {}  # the defaults are the fields'
    flagged = {f.name for f in attrs.fields(SearchSettings) if f.metadata.get("cli")}
    assert flagged == set(SearchSettings.NAMES) - {"callbacks", "cache_data", "keras_verbose", "verbose"}


def test_data_error_inside_tf_data_keeps_tensorflow_log_off_the_terminal(write_module):
    source = TINY.replace("def train():", "def train(act):").replace(
        "        yield x, x[:, :1]", "        yield x, x[:, :1]\n    raise RuntimeError('corrupt record')")
    path = write_module(source)
    proc = run_cli("run", f"{path}:build", "--steps-per-epoch", "5")
    assert proc.returncode == 2
    assert "error: data factory 'train' (train_data) raised RuntimeError at batch 3: corrupt record" in proc.stderr
    assert not CHATTER.search(proc.stderr), proc.stderr


def test_plan_lists_combinations_without_importing_tensorflow(write_module):
    path = write_module("import gridspec as gs\n\n@gs.grid(a=[1, 2], b=['x', 'y', 'z'])\ndef build(a, b):\n    pass\n")
    proc = run_cli("plan", f"{path}:build")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "build: a (2) x b (3) = 6 combinations"
    assert lines[1].split(maxsplit=1) == ["1", "{'a': 1, 'b': 'x'}"]
    assert lines[6].split(maxsplit=1) == ["6", "{'a': 2, 'b': 'z'}"]
    code = (f"import sys; from gridspec.cli import main; main(['plan', {str(path)!r} + ':build']); "
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF')")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert check.stdout.splitlines()[-1] == "NO-TF"


def test_plan_of_a_huge_grid_is_instant(write_module):
    path = write_module("import gridspec as gs\n\n@gs.grid(**{f'a{i}': range(10) for i in range(8)})\n"
                        "def build(**kw):\n    pass\n")
    proc = run_cli("plan", f"{path}:build", "--limit", "2")
    assert proc.returncode == 0
    assert "= 100,000,000 combinations" in proc.stdout
    assert "… and 99,999,998 more" in proc.stdout


def test_list_shows_grids_and_factories():
    by_name_run = start_cli("list", "batch_size_axis", cwd=ROOT / "examples")  # beside the first one
    proc = run_cli("list", "examples/seed_grid.py")
    assert proc.returncode == 0, proc.stderr
    assert "build: lr (2) x loss (1) x act_in (3) x act_out (2) = 12 combinations" in proc.stdout
    assert "train (train_data)" in proc.stdout and "val (val_data)" in proc.stdout
    by_name = finish_cli(by_name_run)
    assert by_name.returncode == 0 and "train (train_data) (takes batch_size)" in by_name.stdout


@pytest.mark.parametrize("code", [
    "import gridspec",
    "import gridspec.cli, gridspec.engine, gridspec.registry",
])
def test_import_does_not_load_tensorflow(code):
    check = subprocess.run([sys.executable, "-c", code + "; import sys; print('tensorflow' in sys.modules, 'keras' in sys.modules)"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert check.stdout.strip() == "False False", check.stderr


def test_help_does_not_load_tensorflow():
    code = ("import sys\nfrom gridspec.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "run" in check.stdout and check.stdout.splitlines()[-1] == "False"
