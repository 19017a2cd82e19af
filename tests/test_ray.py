"""The Ray executor against a real local Ray instance on 127.0.0.1 (dashboard off).

Ray is an optional extra. Where it is missing these tests skip, except in CI (``CI`` or
``GRIDSPEC_REQUIRE_RAY`` set), where a missing Ray is a failure: CI installs ``gridspec[ray]``.
"""

from __future__ import annotations

import os
import sys

import pytest

import gridspec as gs

if os.environ.get("CI") or os.environ.get("GRIDSPEC_REQUIRE_RAY"):
    import ray  # noqa: F401  (CI must have the extra: fail loudly, never skip)
else:
    pytest.importorskip("ray", reason='the Ray extra is not installed (pip install "gridspec[ray]")')

from test_halving import FEATURES, train, val  # noqa: E402  (the same tiny data: Ray workers import it by path)


@gs.grid(units=[2, 8], lr=[0.03, 0.003], boom=[False, True])
def build(units, lr, boom):
    import keras

    if boom and units == 8:
        raise ValueError(f"boom with {units} units")
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(units, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


SETTINGS = dict(epochs=3, steps_per_epoch=4, validation_steps=2, train=train, val=val, seed=0)


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of this test module alone: 2 CPUs, small object store, no dashboard."""
    import ray

    ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=2, include_dashboard=False,
             object_store_memory=100 * 1024 * 1024, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def same_results(a: gs.SearchResult, b: gs.SearchResult) -> None:
    assert [(t.number, t.status, t.epochs, t.best_epoch, t.error) for t in a.trials] == \
        [(t.number, t.status, t.epochs, t.best_epoch, t.error) for t in b.trials]
    for x, y in zip(a.trials, b.trials):
        assert x.params == y.params
        assert (x.score is None) == (y.score is None)
        if x.score is not None:
            assert x.score == pytest.approx(y.score, rel=1e-5)
    assert a.best_params == b.best_params


def test_a_search_on_ray_equals_the_in_process_search_and_failures_are_failed_trials(local_ray):
    on_ray = build.search(executor="ray", **SETTINGS)  # fused groups, one Ray task each
    assert any(t.fused_with for t in on_ray.trials)
    here = build.search(**SETTINGS)
    same_results(on_ray, here)
    same_results(on_ray, build.search(fuse=1, **SETTINGS))  # Keras fit, one trial at a time
    failed = on_ray.failed
    assert [t.number for t in failed] == [6, 8]
    assert all(t.error == "ValueError: boom with 8 units" and t.status is gs.TrialStatus.FAILED for t in failed)


def test_halving_on_ray_continues_trials_like_in_process(local_ray):
    on_ray = build.search(executor="ray", strategy="halving", **SETTINGS)
    here = build.search(strategy="halving", **SETTINGS)
    same_results(on_ray, here)
    assert len(on_ray.pruned) == 4 and on_ray.best.epochs == 3


def broken_train():
    raise OSError("disk on fire")
    yield


def test_a_data_mistake_is_found_on_a_ray_worker_before_anything_trains_or_is_journaled(local_ray, tmp_path):
    storage = tmp_path / "search.sqlite"
    with pytest.raises(gs.DataError, match=r"data factory 'broken_train' \(train_data\) raised OSError at batch 0: disk on fire"):
        build.search(executor="ray", storage=str(storage), **{**SETTINGS, "train": broken_train})
    assert not storage.exists()  # the worker's probe came before the journal was opened


@gs.grid(crash=[False, True])
def crashing(crash):
    import keras

    if crash:
        os._exit(3)  # the worker process dies: no exception, no result
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
    return model


def test_a_crashed_worker_is_a_failed_trial(local_ray):
    result = crashing.search(executor="ray", epochs=1, steps_per_epoch=2, train=train, val=None,
                             trial_resources={"num_cpus": 1})
    assert [t.status for t in result.trials] == [gs.TrialStatus.COMPLETE, gs.TrialStatus.FAILED]
    assert "died" in result.trials[1].error or "Worker" in result.trials[1].error


def test_a_crashed_worker_under_a_fused_group_fails_only_the_culprit(local_ray):
    # one slot (2 CPUs a task): both trials form one group, whose worker dies building trial 2
    result = crashing.search(executor="ray", epochs=1, steps_per_epoch=2, train=train, val=None,
                             trial_resources={"num_cpus": 2})
    assert [t.status for t in result.trials] == [gs.TrialStatus.COMPLETE, gs.TrialStatus.FAILED]
    assert result.trials[0].fused_with == ()  # it completed when run again alone


def test_without_ray_the_executor_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(gs.GridSpecError, match=r'executor="ray" needs Ray; install it with pip install "gridspec\[ray\]"'):
        build.search(executor="ray", **SETTINGS)


def test_the_cli_runs_a_search_on_a_local_ray_instance(write_module):
    from conftest import run_cli
    from test_halving import CLI_MODULE

    path = write_module(CLI_MODULE)
    done = run_cli("run", f"{path}:build", "--epochs", "1", "--steps-per-epoch", "2",
                   "--executor", "ray", "--address", "local", "--trial-cpus", "1")
    assert done.returncode == 0, done.stderr
    assert sum(line.startswith("Model ") for line in done.stdout.splitlines()) == 6
    assert "Best params found: {" in done.stdout and "Traceback" not in done.stderr


def test_functions_ray_workers_cannot_import_are_refused_before_ray_starts():
    from conftest import batches

    @gs.grid(units=[2])
    def tiny(units):
        raise AssertionError("never built")

    with pytest.raises(gs.GridSpecError) as info:
        tiny.search(executor="ray", steps_per_epoch=1, train=lambda: batches(0, 2), val=None)
    assert "can't be sent to worker processes" in str(info.value)
    assert "define it at the top level" in str(info.value)
