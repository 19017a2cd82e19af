"""Ray across nodes that share no checkpoint folder: a two-node cluster simulated on 127.0.0.1.

``ray.cluster_utils.Cluster`` starts a head node (no CPUs: it only holds the GCS and the
driver's objects) and two worker nodes of one CPU each, every node with its own processes
and raylet. Each Ray worker process keeps halving's checkpoints in a private temporary
folder, so a promoted trial continues from its weights only if they travelled with the
result back to the search's process and on to the node that continues it.

Like ``test_ray.py``: skipped where Ray is missing, except in CI (``CI`` or
``GRIDSPEC_REQUIRE_RAY``), where a missing Ray is a failure.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

import gridspec as gs

if os.environ.get("CI") or os.environ.get("GRIDSPEC_REQUIRE_RAY"):
    import ray  # noqa: F401  (CI must have the extra: fail loudly, never skip)
else:
    pytest.importorskip("ray", reason='the Ray extra is not installed (pip install "gridspec[ray]")')

import keras  # noqa: E402

from test_halving import FEATURES, train, val  # noqa: E402  (Ray workers import them by path)


@gs.grid(units=[2, 4, 8, 16], lr=[0.05, 0.005])
def build(units, lr):
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(units, activation="tanh"),
                              keras.layers.Dense(1)], name=f"units{units}_lr{lr}")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mean_squared_error")
    return model


class WhereEpochsRan(keras.callbacks.Callback):
    """Appends (model name, epoch, node id, pid) to ``path`` as each epoch begins (picklable:
    it travels to the Ray workers with the search's callbacks)."""

    def __init__(self, path: str, pause: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.pause = pause  # the model whose first epoch waits a while (to be caught running)

    def on_epoch_begin(self, epoch, logs=None):
        import ray

        from gridspec.executors.ray import _RUNNERS  # this worker's runner: where it keeps checkpoints

        folders = [r.settings.folders.checkpoint_dir for r in _RUNNERS.values()]
        line = {"model": self.model.name, "epoch": epoch, "folders": folders,
                "node": ray.get_runtime_context().get_node_id() if ray.is_initialized() else "driver",
                "pid": os.getpid()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        if self.model.name == self.pause and epoch == 0:
            time.sleep(4)


def epochs_ran(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")] if os.path.exists(path) else []


SETTINGS = dict(epochs=3, steps_per_epoch=3, validation_steps=2, train=train, val=val, seed=0,
                strategy="halving", eta=3)


@pytest.fixture()
def cluster(monkeypatch):
    """A head node without CPUs and two worker nodes of 1 CPU each, all on 127.0.0.1."""
    import ray
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    # Ray turns "127.0.0.1" into this machine's outward address when it connects to a
    # cluster; as on a laptop (Ray's own switch for Windows and macOS), stay on loopback.
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    common = dict(node_ip_address="127.0.0.1", object_store_memory=80 * 1024 * 1024)
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False, **common))
    workers = [c.add_node(num_cpus=1, **common) for _ in range(2)]
    port = c.address.rsplit(":", 1)[1]
    ray.init(address=f"127.0.0.1:{port}", _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    try:
        yield c, workers
    finally:
        ray.shutdown()
        c.shutdown()


def test_halving_continues_promoted_trials_on_another_node_from_their_weights(cluster, tmp_path, monkeypatch):
    c, workers = cluster
    log = str(tmp_path / "epochs.jsonl")
    rung0 = len(build.space)
    seen: list[gs.Trial] = []
    removed: list[str] = []

    def events(event):
        """When rung 0 is over, remove the node that trained its best trial: the promoted
        best must continue on the other node, from weights that node never had."""
        trial = getattr(event, "trial", None)
        if trial is None or removed:
            return
        seen.append(trial)
        if len(seen) == rung0:
            best = min(seen, key=lambda t: t.score)
            name = f"units{best.params['units']}_lr{best.params['lr']}"
            node = next(e["node"] for e in epochs_ran(log) if e["model"] == name)
            doomed = next(w for w in workers if w.node_id == node)
            removed.append(node)
            c.remove_node(doomed)

    monkeypatch.setenv("GRIDSPEC_CHECKPOINT_DIR", str(tmp_path))  # the search's own folder in here
    on_cluster = build.search(executor="ray", callbacks=[WhereEpochsRan(log)], verbose=events, **SETTINGS)
    # the search's checkpoints and every worker's are removed when it ends
    assert sorted(os.listdir(tmp_path)) == ["epochs.jsonl"]
    workers_folders = {f for e in epochs_ran(log) for f in e["folders"]}
    assert len(workers_folders) >= 2 and not any(os.path.exists(f) for f in workers_folders)
    here = build.search(**SETTINGS)

    ran = epochs_ran(log)
    assert {e["node"] for e in ran if e["epoch"] == 0} == {w.node_id for w in workers}  # both nodes
    by_model: dict[str, list[dict]] = {}
    for e in ran:
        by_model.setdefault(e["model"], []).append(e)
    for trial in on_cluster.trials:
        name = f"units{trial.params['units']}_lr{trial.params['lr']}"
        # every epoch trained once: promoted trials continued, none retrained from scratch
        assert [e["epoch"] for e in by_model[name]] == list(range(trial.epochs)), name
    best = on_cluster.best
    best_name = f"units{best.params['units']}_lr{best.params['lr']}"
    assert best.epochs == 3 and best.status is gs.TrialStatus.COMPLETE
    nodes = [e["node"] for e in by_model[best_name]]
    assert nodes[0] == removed[0] and set(nodes[1:]) == {w.node_id for w in workers} - {removed[0]}
    # the same curves as in one process, trial by trial
    assert [(t.number, t.status, t.epochs) for t in on_cluster.trials] == \
        [(t.number, t.status, t.epochs) for t in here.trials]
    for a, b in zip(on_cluster.trials, here.trials):
        assert a.history.keys() == b.history.keys()
        for key in a.history:
            assert a.history[key] == pytest.approx(b.history[key], rel=1e-4, abs=1e-6), (a.number, key)


def test_a_node_lost_mid_search_costs_only_its_running_trial_which_runs_again_elsewhere(cluster, tmp_path):
    c, workers = cluster
    log = str(tmp_path / "epochs.jsonl")
    slow = "units16_lr0.05"
    lost: list[str] = []

    def kill_the_node_running_the_slow_trial():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not lost:
            for e in epochs_ran(log):
                if e["model"] == slow:  # it is in its first epoch, paused: kill its node now
                    lost.append(e["node"])
                    c.remove_node(next(w for w in workers if w.node_id == e["node"]))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_node_running_the_slow_trial)
    killer.start()
    try:
        result = build.search(executor="ray", callbacks=[WhereEpochsRan(log, pause=slow)],
                              epochs=2, steps_per_epoch=2, validation_steps=1, train=train, val=val)
    finally:
        killer.join()
    assert lost, "the slow trial never started"
    # every combination is accounted for, each once, and the lost one ran again on the other node
    assert sorted(t.number for t in result.trials) == list(range(1, len(build.space) + 1))
    assert all(t.status is gs.TrialStatus.COMPLETE for t in result.trials), [t.error for t in result.failed]
    survivor = ({w.node_id for w in workers} - set(lost)).pop()
    runs = [e for e in epochs_ran(log) if e["model"] == slow]
    assert runs[0]["node"] == lost[0] and [e["node"] for e in runs[1:]] == [survivor, survivor]
    assert [e["epoch"] for e in runs[1:]] == [0, 1]
