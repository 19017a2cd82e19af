"""Worker processes, GPU pinning and data parallelism: the in-process search is the reference.

Searches with workers spawn fresh Python processes that import TensorFlow, so each costs
seconds: the grids are tiny and each spawning search runs once per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import gridspec as gs
from gridspec.executors.process import worker_environment
from gridspec.runspec import RunSpec, function_ref, resolve_ref

from conftest import ROOT

sys.path.insert(0, os.path.dirname(__file__))
import workers_grid  # noqa: E402

SETTINGS = dict(epochs=2, steps_per_epoch=3, validation_steps=2)


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    """The grid searched by two worker processes, with each trial's worker logged."""
    log = tmp_path_factory.mktemp("workers") / "trials.jsonl"
    os.environ["GS_TEST_LOG"] = str(log)
    try:
        result = workers_grid.build.search(workers=2, **SETTINGS)
    finally:
        del os.environ["GS_TEST_LOG"]
    return result, [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize("fuse", ["auto", 1])
def test_parallel_equals_sequential(parallel, fuse):
    result, _ = parallel  # two workers, fused groups (one per worker)
    assert all(len(t.fused_with) == 1 for t in result.trials)
    sequential = workers_grid.build.search(fuse=fuse, **SETTINGS)  # fuse=1: Keras fit, one by one
    assert [t.params for t in result.trials] == [t.params for t in sequential.trials]
    assert [t.status for t in result.trials] == [t.status for t in sequential.trials]
    for par, seq in zip(result.trials, sequential.trials):
        assert par.score == pytest.approx(seq.score, rel=1e-5)
        assert par.best_epoch == seq.best_epoch and par.epochs == seq.epochs
        for key in seq.history:
            assert par.history[key] == pytest.approx(seq.history[key], rel=1e-5)
    assert result.best_params == sequential.best_params


def test_every_combination_runs_exactly_once_under_workers(parallel):
    result, log = parallel
    ran = sorted((entry["params"]["units"], entry["params"]["lr"]) for entry in log)
    assert ran == sorted((p["units"], p["lr"]) for p in workers_grid.build.space)
    assert [t.number for t in result.trials] == [1, 2, 3, 4]
    assert len({entry["pid"] for entry in log}) == 2  # both workers took trials
    assert os.getpid() not in {entry["pid"] for entry in log}


def test_workers_share_the_cores(parallel):
    _, log = parallel
    cores = len(os.sched_getaffinity(0))
    assert {entry["threads"] for entry in log} == {str(max(1, cores // 2))}


def test_a_killed_worker_fails_its_trial_and_the_search_goes_on():
    result = workers_grid.fragile.search(executor="process", **SETTINGS)
    statuses = {t.params["units"]: t.status for t in result.trials}
    assert statuses == {2: gs.TrialStatus.COMPLETE, 3: gs.TrialStatus.FAILED, 4: gs.TrialStatus.COMPLETE}
    failed = result.failed[0]
    assert "WorkerCrashed" in failed.error and "SIGKILL" in failed.error
    assert result.best_params in ({"units": 2}, {"units": 4})


def test_gpus_pin_one_worker_per_gpu(tmp_path):
    log = tmp_path / "trials.jsonl"
    os.environ["GS_TEST_LOG"] = str(log)
    try:  # no GPU here: CUDA_VISIBLE_DEVICES is what pins, and what we can check
        result = workers_grid.build.search(gpus=[0, 1], **SETTINGS)
    finally:
        del os.environ["GS_TEST_LOG"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    by_pid: dict[int, set[str]] = {}
    for entry in entries:
        by_pid.setdefault(entry["pid"], set()).add(entry["cuda"])
    assert len(result.completed) == 4
    assert sorted(v for values in by_pid.values() for v in values) == ["0", "1"]
    assert all(len(values) == 1 for values in by_pid.values())


# -- the environment a worker starts with (no process needed) --------------------------------
@pytest.mark.parametrize("gpus, slots, expected", [
    ([0, 1], 2, ["0", "1"]),
    ([3], 1, ["3"]),
    ([0, 1], 4, ["0", "1", "0", "1"]),  # more workers than GPUs: round-robin
    ([2, 5, 7], 3, ["2", "5", "7"]),
    ([0, 1, 2, 3], 2, ["0,2", "1,3"]),  # fewer workers than GPUs: a share each (for mirrored)
])
def test_worker_environment_pins_cuda_visible_devices(gpus, slots, expected):
    envs = [worker_environment(i, slots, gpus, cores=8, base={}) for i in range(slots)]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == expected
    assert all(env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for env in envs)


def test_worker_environment_without_gpus_leaves_devices_alone():
    env = worker_environment(0, 2, None, cores=8, base={"CUDA_VISIBLE_DEVICES": "1", "TF_FORCE_GPU_ALLOW_GROWTH": "false"})
    assert "CUDA_VISIBLE_DEVICES" not in env and "TF_FORCE_GPU_ALLOW_GROWTH" not in env


@pytest.mark.parametrize("workers, cores, threads", [(1, 8, "8"), (2, 8, "4"), (3, 8, "2"), (4, 2, "1"), (2, 2, "1")])
def test_workers_times_threads_fit_the_cores(workers, cores, threads):
    env = worker_environment(0, workers, None, cores=cores, base={})
    assert env["TF_NUM_INTRAOP_THREADS"] == env["TF_NUM_INTEROP_THREADS"] == env["OMP_NUM_THREADS"] == threads


# -- RunSpec: what a worker (local or Ray) rebuilds the search from ----------------------------
def test_runspec_travels_by_reference_and_rebuilds_the_runner():
    import pickle

    from gridspec.records import TrialSettings

    settings = TrialSettings(objective="val_loss", direction="min", steps_per_epoch=3, validation_steps=2)
    spec = RunSpec.from_search(workers_grid.build, workers_grid.train, workers_grid.val, settings)
    assert spec.grid.endswith("workers_grid.py:build") and spec.train.endswith(":train")
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec
    runner = again.runner()
    assert runner.grid is workers_grid.build and runner.sources.fns["train"] is workers_grid.train
    assert resolve_ref(spec.val) is workers_grid.val


def test_a_nested_factory_cannot_go_to_workers():
    def local_train():
        yield from workers_grid._batches(1, 2)

    with pytest.raises(gs.GridSpecError, match="local_train.*can't be sent to worker processes.*top level"):
        function_ref(local_train, "train")
    with pytest.raises(gs.GridSpecError, match="can't be sent to worker processes"):
        workers_grid.build.search(workers=2, train=lambda: workers_grid._batches(1, 2), **SETTINGS)


@pytest.mark.parametrize("settings, message", [
    ({"executor": "dask"}, "unknown executor 'dask'; valid executors: None"),
    ({"gpus": "0,1"}, r"gpus must be a non-empty list of GPU indices, such as gpus=\[0, 1\] \(got gpus='0,1'\)"),
    ({"gpus": [0, 0]}, "gpus lists a GPU twice"),
    ({"distribute": "mirror"}, "distribute must be None, 'mirrored' or a tf.distribute.Strategy"),
])
def test_bad_parallel_settings_are_refused_up_front(settings, message):
    with pytest.raises(gs.GridSpecError, match=message):
        workers_grid.build.search(**SETTINGS, **settings)


# -- data parallelism --------------------------------------------------------------------------
MIRRORED = textwrap.dedent('''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    sys.path.insert(0, sys.argv[1])
    import workers_grid
    seen = {}

    class Replicas(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            strategy = self.model.distribute_strategy
            seen["replicas"] = strategy.num_replicas_in_sync
            seen["devices"] = sorted(strategy.extended.worker_devices)
            seen["kernel"] = sorted(v.device for v in getattr(self.model.weights[0].value, "values", [self.model.weights[0].value]))

    settings = dict(epochs=2, steps_per_epoch=3, validation_steps=2)
    mirrored = workers_grid.build.search(distribute="mirrored", callbacks=[Replicas()], **settings)
    single = workers_grid.build.search(**settings)
    print(json.dumps({"seen": seen, "mirrored": [t.score for t in mirrored.trials],
                      "single": [t.score for t in single.trials]}))
''')


def test_mirrored_trial_trains_on_both_devices_and_scores_like_one():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", MIRRORED, os.path.dirname(__file__)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["seen"]["replicas"] == 2
    assert out["seen"]["devices"] == ["/job:localhost/replica:0/task:0/device:CPU:0",
                                      "/job:localhost/replica:0/task:0/device:CPU:1"]
    assert len(out["seen"]["kernel"]) == 2
    assert out["mirrored"] == pytest.approx(out["single"], rel=1e-3)


# -- the command line --------------------------------------------------------------------------
def test_cli_refuses_a_bad_gpu_list():
    from conftest import run_cli

    done = run_cli("run", "examples/seed_grid.py:build", "--gpus", "zero,one")
    assert done.returncode == 2
    assert "GPU indices separated by commas, such as 0,1" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_refuses_an_unknown_executor():
    from conftest import run_cli

    done = run_cli("run", "examples/seed_grid.py:build", "--steps-per-epoch", "2", "--executor", "dask")
    assert done.returncode == 2
    assert "unknown executor 'dask'" in done.stderr and "Traceback" not in done.stderr
