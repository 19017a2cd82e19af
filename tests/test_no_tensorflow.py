"""gridspec on JAX where TensorFlow cannot be imported.

One child process (``KERAS_BACKEND=jax``) runs everything: searches on every kind of data,
fused and alone, every strategy, a journal, TensorBoard logs, Ray, and the CLI (``run`` with
worker processes, ``plan``, ``list``, ``show``) as its own child processes. TensorFlow is
blocked by a ``sitecustomize`` on ``PYTHONPATH``, so every process started from it (worker
processes, Ray's workers, the CLI) has it blocked too; the model function checks that in
whichever process builds the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

BLOCK = """
import sys


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())
"""

MODELS = """
import numpy as np
import gridspec as gs

rng = np.random.default_rng(0)
X, XV = rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(16, 4)).astype("float32")


def batches(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x[:, :1])


@gs.train_data
def train():
    yield from batches(1, 4)


@gs.val_data
def val():
    yield from batches(2, 2)


@gs.train_data(name="arrays")
def arrays():
    return X, np.tanh(X[:, :1])      # 2 batches of 32: the second has 8 rows


@gs.val_data(name="val_arrays")
def val_arrays():
    return XV, np.tanh(XV[:, :1])


@gs.train_data(name="broken")
def broken():
    for index, batch in enumerate(batches(4, 4)):
        if index == 2:
            raise OSError("disk gone")
        yield batch


@gs.train_data(name="sequence")
def sequence():
    import keras

    class Sequence(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.batches = list(batches(3, 3))

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, index):
            return self.batches[index]

    return Sequence()


@gs.val_data(name="listed")
def listed():
    return list(batches(2, 2))


@gs.grid(lr=[0.03, 0.01])
def build(lr):
    try:
        import tensorflow  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise RuntimeError("tensorflow is importable where this model is built")
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model
"""

FED = """
import numpy as np
import keras
from gridspec.data import Source


def batches(sizes):
    def factory():
        start = 0
        for size in sizes:
            x = np.arange(start, start + size, dtype="float32").reshape(size, 1).repeat(2, 1)
            yield {"a": x}, x[:, :1], np.ones(size, "float32")
            start += size
    return factory


class Sequence(keras.utils.PyDataset):
    def __init__(self):
        super().__init__()
        self.batches = list(batches([4, 4, 4])())

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return self.batches[index]


X = np.arange(50, dtype="float32").reshape(25, 2)
FORMS = {  # factory, steps_per_epoch, cache bytes
    "cached": (batches([4] * 5), 3, 2**30),
    "streamed": (batches([4] * 5), 3, 0),
    "ragged": (batches([4, 3, 5, 4]), 3, 2**30),
    "pydataset": (Sequence, None, 2**30),
    "arrays": (lambda: ({"a": X}, X[:, :1]), None, 2**30),
    "arrays with steps": (lambda: ({"a": X}, X[:, :1]), 2, 2**30),
    "arrays in one batch": (lambda: ({"a": X[:8]}, X[:8, :1]), None, 2**30),
}


def fed():
    # the targets of every batch fit trains and validates on, per form, from epoch 0 and from 1
    out = {}
    for name, (factory, steps, cache) in FORMS.items():
        source = Source(factory, "train", {}, repr(name), cache)
        for start in (0, 1):
            inputs = keras.Input((2,), name="a")
            model = keras.Model({"a": inputs}, keras.layers.Dense(1)(inputs))
            model.compile("sgd", "mse", run_eagerly=True)
            seen = {"train": [], "val": []}
            for kind, step in (("train", "train_step"), ("val", "test_step")):
                def spy(*args, _step=getattr(model, step), _seen=seen[kind]):  # JAX: (state, data)
                    _seen.append([float(v) for v in np.asarray(args[-1][1])[:, 0]])
                    return _step(*args)
                setattr(model, step, spy)
            model.fit(source.training(3, steps, 7, 8, start), epochs=3, initial_epoch=start,
                      steps_per_epoch=steps, validation_data=source.validation(2 if steps else None, 8),
                      verbose=0, shuffle=False)
            out[f"{name} from epoch {start}"] = seen
    return out
"""

DRIVER = """
import json, os, subprocess, sys

out = {}
import gridspec as gs


def cli_start(*args):
    return subprocess.Popen([sys.executable, "-m", "gridspec", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def cli_done(proc):
    stdout, stderr = proc.communicate(timeout=600)
    return [proc.returncode, stdout, stderr]


# the commands that need nothing from this process start now and run beside its searches
started = {"cli_plan": cli_start("plan", "nomodels.py:build"), "cli_list": cli_start("list", "nomodels.py"),
           "cli_distribute": cli_start("run", "nomodels.py:build", "--train", "arrays", "--val", "val_arrays",
                                       "--distribute", "mirrored", "--storage", "cli-distribute.sqlite")}

out["import"] = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow", "jax", "ray"))
import nomodels as m


def trials(result):
    return [[t.number, t.status.name, t.epochs, {k: list(v) for k, v in t.history.items()}] for t in result.trials]


GEN = dict(train="train", val="val", epochs=2, steps_per_epoch=3, validation_steps=2, verbose=0)
ARR = dict(train="arrays", val="val_arrays", epochs=3, verbose=0)
out["generators"] = [trials(m.build.search(fuse=1, tensorboard_dir="logs", **GEN)), trials(m.build.search(**GEN))]
alone = m.build.search(fuse=1, save_best="best.keras", **ARR)
out["arrays"] = [trials(alone), trials(m.build.search(**ARR))]
out["refit"] = {k: len(v) for k, v in alone.refit(epochs=1).history.history.items()}
out["sequence"] = trials(m.build.search(train="sequence", val="listed", epochs=2, verbose=0))
try:  # streamed (not cached): the error comes from inside Keras's fit
    m.build.search(train="broken", val=None, steps_per_epoch=3, cache_data=False, fuse=1, verbose=0)
except gs.DataError as exc:
    out["data_error"] = str(exc)
import fed
out["fed"] = fed.fed()
out["halving"] = trials(m.build.search(strategy="halving", storage="halving.sqlite", **ARR))
for strategy in ("random", "hyperband"):  # ASHA: the CLI's run below
    result = m.build.search(strategy=strategy, max_trials=1 if strategy == "random" else None, **ARR)
    out[strategy] = [[t.status.name, t.epochs] for t in result.trials]
try:
    m.build.search(distribute="mirrored", storage="distribute.sqlite", **ARR)
except gs.errors.MissingExtra as exc:
    out["distribute"] = str(exc)
out["distribute_journal"] = os.path.exists("distribute.sqlite")
try:
    import ray  # noqa: F401
except ImportError:
    out["ray"] = None
else:
    result = m.build.search(executor="ray", address="local", trial_resources={"num_cpus": 1},
                            **{**GEN, "epochs": 1})
    out["ray"] = [[t.status.name, t.error] for t in result.trials]


out["cli_run"] = cli_done(cli_start("run", "nomodels.py:build", "--train", "train", "--val", "val", "--epochs", "3",
                                    "--steps-per-epoch", "2", "--validation-steps", "1", "--strategy", "asha",
                                    "--workers", "2", "--storage", "cli.sqlite", "--tensorboard", "clilogs",
                                    "--no-live"))
out["cli_show"] = cli_done(cli_start("show", "cli.sqlite"))
out.update({name: cli_done(proc) for name, proc in started.items()})
out["cli_distribute_journal"] = os.path.exists("cli-distribute.sqlite")
out["tensorflow_loaded"] = "tensorflow" in sys.modules
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The child process's findings (a dict), and the folder it worked in."""
    folder = tmp_path_factory.mktemp("no_tensorflow")
    (folder / "block").mkdir()
    (folder / "block" / "sitecustomize.py").write_text(BLOCK)
    (folder / "nomodels.py").write_text(MODELS)
    (folder / "driver.py").write_text(DRIVER)
    (folder / "fed.py").write_text(FED)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(folder / "block"), str(ROOT), str(folder)])}
    done = subprocess.run([sys.executable, "driver.py"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):]), folder


def test_import_gridspec_imports_no_keras_and_nothing_imports_tensorflow(run):
    out, _ = run
    assert out["import"] == []
    assert out["tensorflow_loaded"] is False


def complete(trials) -> bool:
    return all(status == "COMPLETE" for _, status, _, _ in trials)


def test_searches_on_generators_arrays_and_pydatasets_train_and_fused_equals_fit(run):
    out, folder = run
    for kind in ("generators", "arrays"):
        alone, default = out[kind]
        assert complete(alone) and len(alone) == 2, alone
        assert default == alone  # fuse=1 is the oracle
    assert complete(out["sequence"]) and all(len(h["val_loss"]) == 2 for _, _, _, h in out["sequence"])
    assert (folder / "best.keras").exists() and out["refit"] == {"loss": 1, "val_loss": 1}


def test_a_data_error_inside_fit_names_the_factory_and_the_batch(run):
    out, _ = run
    assert out["data_error"] == "data factory 'broken' (train_data) raised OSError at batch 2: disk gone"


def test_fit_reads_the_same_batches_as_on_tensorflow_and_a_continued_run_reads_the_rest(run, monkeypatch):
    out, folder = run
    monkeypatch.syspath_prepend(str(folder))
    import fed

    on_tensorflow = fed.fed()  # this process runs Keras on TensorFlow, with tf.data
    assert out["fed"] == on_tensorflow
    for name in fed.FORMS:
        full, rest = on_tensorflow[f"{name} from epoch 0"], on_tensorflow[f"{name} from epoch 1"]
        assert full["train"][len(full["train"]) - len(rest["train"]):] == rest["train"]
        assert rest["val"] and set(map(tuple, rest["val"])) <= set(map(tuple, full["val"]))


def test_every_strategy_runs_and_a_promoted_trial_continues_on_the_uninterrupted_curve(run):
    out, folder = run
    full = {number: history for number, _, _, history in out["arrays"][0]}
    promoted = [(n, h) for n, status, epochs, h in out["halving"] if status == "COMPLETE"]
    assert len(promoted) == 1 and all(h == full[n] for n, h in promoted)  # shuffled arrays: same batches
    assert (folder / "halving.sqlite").exists()
    assert len(out["random"]) == 1 and out["random"][0][0] == "COMPLETE"
    assert {status for status, _ in out["hyperband"]} <= {"COMPLETE", "PRUNED"}
    assert max(epochs for _, epochs in out["hyperband"]) == 3


def test_distribute_says_it_needs_tensorflow_before_anything_is_created(run):
    out, _ = run
    assert out["distribute"] == ("distribute='mirrored' (--distribute) needs tensorflow, which is not installed "
                                 "(tf.distribute is TensorFlow's); install it with pip install tensorflow, "
                                 "or leave distribute unset")
    assert out["distribute_journal"] is False
    code, stdout, stderr = out["cli_distribute"]
    assert code == 2 and stderr.startswith("error: distribute='mirrored' (--distribute) needs tensorflow")
    assert "Traceback" not in stderr and out["cli_distribute_journal"] is False


def test_ray_workers_train_without_tensorflow(run):
    out, _ = run
    pytest.importorskip("ray")
    assert out["ray"] == [["COMPLETE", None], ["COMPLETE", None]]


def test_the_cli_runs_asha_on_worker_processes_with_a_journal_and_shows_it(run):
    out, _ = run
    for name in ("cli_run", "cli_show", "cli_plan", "cli_list"):
        code, _, stderr = out[name]
        assert code == 0 and "Traceback" not in stderr, (name, stderr)
    assert "Best params found: {'lr': " in out["cli_run"][1]
    assert "2 combinations" in out["cli_plan"][1] and "build" in out["cli_list"][1]
    assert "pruned" in out["cli_run"][1] and "lr" in out["cli_show"][1]


def test_tensorboard_logs_are_written_without_tensorflow(run):
    from test_insights import _hparams_records, _scalar_tags

    _, folder = run
    for logs in (folder / "logs", folder / "clilogs"):
        runs = sorted(p.name for p in logs.iterdir())
        assert runs[:2] == ["trial-0001", "trial-0002"]
        records = _hparams_records(str(logs / "trial-0001"))
        assert [r for r in records if r.HasField("session_start_info")]
        assert [r for r in records if r.HasField("session_end_info")]
        assert "score" in _scalar_tags(str(logs / "trial-0001"))
        assert {"epoch_loss", "epoch_learning_rate"} <= _scalar_tags(str(logs / "trial-0001" / "train"))
        assert "epoch_loss" in _scalar_tags(str(logs / "trial-0001" / "validation"))
