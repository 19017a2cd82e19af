"""After the search: the best model file, refit, effects, TensorBoard, plots and ``gs.sample``."""

from __future__ import annotations

import glob
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gridspec as gs
from gridspec.result import SearchResult, Trial, TrialStatus

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 16
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# -- tiny data and models ------------------------------------------------------------------
def arrays(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype("float32")
    return x, np.tanh(x[:, :1]).astype("float32")


VAL = arrays(2, 64)  # two batches of 32, the default batch size for arrays


def train_batches():
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.normal(size=(16, FEATURES)).astype("float32")
        yield x, np.tanh(x[:, :1]).astype("float32")


def val_arrays():
    return VAL


def model(lr: float, act: str):
    import keras

    m = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(8, activation=act), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return m


@gs.grid(lr=[0.05, 0.001], act=["tanh", "relu"])
def small(lr, act):
    return model(lr, act)


@gs.grid(lr=[0.01], act=["tanh", "no_such_activation"])
def half_broken(lr, act):
    return model(lr, act)


SEARCH = dict(epochs=3, steps_per_epoch=4, train=train_batches, val=val_arrays)


def trial(number, status="COMPLETE", score=None, **params):
    return Trial(number=number, params=params, status=TrialStatus(status), score=score,
                 best_epoch=1 if score is not None else None, epochs=1,
                 error="ValueError: boom" if status == "FAILED" else None)


# -- save_best -------------------------------------------------------------------------------
class CountModelFiles:
    """A user callback that counts .keras files under a folder whenever a trial starts."""

    def __init__(self, folder):
        import keras

        class _Callback(keras.callbacks.Callback):
            def on_train_begin(inner, logs=None):
                self.counts.append(len(glob.glob(os.path.join(folder, "**", "*.keras"), recursive=True)))

        self.counts: list[int] = []
        self.callback = _Callback()


def test_save_best_keeps_only_the_best_trials_model_at_its_best_epoch(tmp_path):
    import keras

    counter = CountModelFiles(str(tmp_path))
    path = tmp_path / "best.keras"
    # direction="max" on val_loss makes the best epoch the first one (the loss falls), so
    # the saved weights must be the best epoch's, not the last epoch's.
    result = small.search(**SEARCH, direction="max", save_best=str(path), callbacks=[counter.callback])
    best = result.best
    assert best.best_epoch == 1 and best.epochs == 3
    assert sorted(os.listdir(tmp_path)) == ["best.keras"]  # no staging folder, no other model
    assert max(counter.counts) <= 1  # disk use stays bounded while searching

    loaded = keras.saving.load_model(path)
    score = loaded.evaluate(*VAL, batch_size=32, verbose=0)
    assert score == pytest.approx(result.best_score, rel=1e-5)
    assert score != pytest.approx(best.history["val_loss"][-1], rel=1e-5)
    assert loaded.layers[0].activation.__name__ == best.params["act"]


def test_save_best_with_repeats_saves_the_mean_curves_best_epoch(tmp_path):
    import keras

    path = tmp_path / "best.keras"
    result = small.search(**SEARCH, repeats=2, max_trials=1, save_best=str(path))
    assert os.listdir(tmp_path) == ["best.keras"]
    loaded = keras.saving.load_model(path)
    assert loaded.layers[0].activation.__name__ == result.best.params["act"]


def test_save_best_is_checked_before_anything_trains(tmp_path):
    calls = []

    @gs.grid(lr=[0.01])
    def counted(lr):
        calls.append(lr)
        return model(lr, "tanh")

    with pytest.raises(gs.GridSpecError, match="does not exist") as info:
        counted.search(**SEARCH, save_best=str(tmp_path / "missing" / "best.keras"))
    assert "missing" in str(info.value) and calls == []
    with pytest.raises(gs.GridSpecError, match=r"ending in \.keras.*'best\.h5'.*'best\.keras'"):
        counted.search(**SEARCH, save_best="best.h5")
    assert calls == []


# -- refit -------------------------------------------------------------------------------------
def test_refit_trains_the_best_params_with_the_searchs_settings():
    import keras

    result = small.search(**SEARCH)
    refitted = result.refit()
    assert isinstance(refitted, keras.Model)
    assert refitted.layers[0].activation.__name__ == result.best_params["act"]
    assert float(refitted.optimizer.learning_rate) == pytest.approx(result.best_params["lr"])
    # same seed, data and settings: the same curve as the best trial
    assert refitted.history.history["val_loss"] == pytest.approx(result.best.history["val_loss"], rel=1e-5)

    x, y = arrays(3, 96)
    longer = result.refit(epochs=2, steps_per_epoch=None, train=(x, y), val=None)
    assert len(longer.history.history["loss"]) == 2 and "val_loss" not in longer.history.history
    assert longer.predict(x[:4], verbose=0).shape == (4, 1)


def test_refit_without_a_completed_trial_is_a_search_error():
    failed = SearchResult(trials=(trial(1, "FAILED", lr=0.1),), objective="loss", direction="min")
    with pytest.raises(gs.SearchError, match="no trial completed"):
        failed.refit()
    detached = SearchResult(trials=(trial(1, score=0.5, lr=0.1),), objective="loss", direction="min")
    with pytest.raises(gs.GridSpecError, match=r"refit\(\) needs the result of search\(\)"):
        detached.refit()


# -- effects -----------------------------------------------------------------------------------
def hand_result() -> SearchResult:
    trials = [
        trial(1, score=0.10, lr=0.1, act="tanh", loss="mse"),
        trial(2, score=0.50, lr=0.1, act="relu", loss="mse"),
        trial(3, score=0.20, lr=0.01, act="tanh", loss="mse"),
        trial(4, "FAILED", lr=0.01, act="relu", loss="mse"),
        trial(5, score=0.30, lr=0.001, act="tanh", loss="mse"),
        trial(6, score=0.70, lr=0.001, act="relu", loss="mse"),
    ]
    return SearchResult(trials=tuple(trials), objective="val_loss", direction="min", axes=("lr", "act", "loss"))


def test_effects_on_a_hand_computed_example():
    effects = hand_result().effects()
    assert [e.axis for e in effects] == ["lr", "act"]  # 'loss' has a single value
    lr = effects["lr"]
    assert [(v.value, v.count) for v in lr.values] == [(0.1, 2), (0.01, 1), (0.001, 2)]
    assert [v.best for v in lr.values] == pytest.approx([0.10, 0.20, 0.30])
    assert [v.mean for v in lr.values] == pytest.approx([0.30, 0.20, 0.50])
    assert lr.spread == pytest.approx(0.30) and lr.best_value == 0.01
    act = effects["act"]
    assert [(v.value, v.count) for v in act.values] == [("tanh", 3), ("relu", 2)]
    assert [v.best for v in act.values] == pytest.approx([0.10, 0.50])
    assert [v.mean for v in act.values] == pytest.approx([0.20, 0.60])
    assert act.spread == pytest.approx(0.40) and act.best_value == "tanh"
    assert [e.axis for e in effects.ranked()] == ["act", "lr"]
    text = str(effects)
    assert text.index("act: spread 0.4") < text.index("lr: spread 0.3")
    assert "* 'tanh'" in text and "n=3" in text
    assert len(effects.to_records()) == 5


def test_effects_direction_max_picks_the_highest_mean():
    result = SearchResult(trials=(trial(1, score=0.9, a=1), trial(2, score=0.6, a=2)),
                          objective="val_accuracy", direction="max", axes=("a",))
    effect = result.effects()["a"]
    assert effect.best_value == 1 and effect.spread == pytest.approx(0.3)


def test_effects_of_an_all_failed_result_is_empty():
    failed = SearchResult(trials=(trial(1, "FAILED", a=1), trial(2, "FAILED", a=2)),
                          objective="loss", direction="min", axes=("a",))
    effects = failed.effects()
    assert len(effects) == 0 and list(effects) == [] and "none" in str(effects)


# -- TensorBoard -------------------------------------------------------------------------------
def _hparams_records(folder: str) -> list:
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for event in LegacyEventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    out.append(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
    return out


def _scalar_tags(folder: str) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(folder)
    accumulator.Reload()
    return set(accumulator.Tags()["tensors"]) | set(accumulator.Tags()["scalars"])


def test_tensorboard_writes_the_hparams_experiment_and_one_run_per_trial(tmp_path):
    from tensorboard.plugins.hparams import api_pb2

    logs = str(tmp_path / "logs")
    result = half_broken.search(**SEARCH, tensorboard_dir=logs)
    assert [t.status for t in result.trials] == [TrialStatus.COMPLETE, TrialStatus.FAILED]

    assert not glob.glob(os.path.join(logs, "events.out.tfevents.*"))  # no empty "." run
    (experiment,) = [r.experiment for r in _hparams_records(os.path.join(logs, "trial-0001"))
                     if r.HasField("experiment")]
    assert [h.name for h in experiment.hparam_infos] == ["lr", "act"]
    act = next(h for h in experiment.hparam_infos if h.name == "act")
    assert sorted(v.string_value for v in act.domain_discrete.values) == ["no_such_activation", "tanh"]
    assert "score" in [m.name.tag for m in experiment.metric_infos]

    runs = sorted(os.listdir(logs))
    runs = [r for r in runs if r.startswith("trial-")]
    assert runs == ["trial-0001", "trial-0002"]  # one run per trial
    for run, t in zip(runs, result.trials):
        records = _hparams_records(os.path.join(logs, run))
        (start,) = [r.session_start_info for r in records if r.HasField("session_start_info")]
        assert start.hparams["act"].string_value == t.params["act"]
        assert start.hparams["lr"].number_value == pytest.approx(t.params["lr"])
        (end,) = [r.session_end_info for r in records if r.HasField("session_end_info")]
        expected = api_pb2.STATUS_SUCCESS if t.status is TrialStatus.COMPLETE else api_pb2.STATUS_FAILURE
        assert end.status == expected
    assert "score" in _scalar_tags(os.path.join(logs, "trial-0001"))
    assert "epoch_loss" in _scalar_tags(os.path.join(logs, "trial-0001", "validation"))
    assert "epoch_loss" in _scalar_tags(os.path.join(logs, "trial-0001", "train"))


# -- plots ---------------------------------------------------------------------------------
def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", head[16:24])


def test_plot_writes_a_png_of_sensible_size(tmp_path):
    path = hand_result().plot(str(tmp_path / "search.png"))
    width, height = png_size(path)
    assert 800 <= width <= 2000 and 400 <= height <= 3000
    import matplotlib.image

    assert matplotlib.image.imread(path).shape[:2] == (height, width)  # decodes as an image


def test_plot_of_an_all_failed_result_still_draws(tmp_path):
    failed = SearchResult(trials=(trial(1, "FAILED", a=1),), objective="loss", direction="min")
    png_size(failed.plot(str(tmp_path / "failed.png")))


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "gridspec\[plot\]"'):
        hand_result().plot(str(tmp_path / "x.png"))


# -- sample ------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=6),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    seed=st.integers(0, 2**16),
)
def test_sample_keeps_class_proportions_within_one_sample_per_class(counts, fraction, seed):
    if any(c * fraction < 1 for c in counts):
        counts = [max(c, int(np.ceil(1 / fraction))) for c in counts]
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    y = np.random.default_rng(seed).permutation(y)
    x = np.arange(len(y) * 2).reshape(len(y), 2)
    xs, ys = gs.sample(x, y, fraction, seed=seed)
    assert len(xs) == len(ys) == round(fraction * len(y))
    kept = np.bincount(ys, minlength=len(counts))
    assert np.all(np.abs(kept - np.array(counts) * fraction) < 1)
    assert np.array_equal(y[xs[:, 0] // 2], ys)  # rows stay paired, in the original order
    assert np.all(np.diff(xs[:, 0]) > 0)


def test_sample_of_a_continuous_target_matches_its_distribution():
    rng = np.random.default_rng(0)
    y = rng.exponential(size=2000).astype("float32")
    x = rng.normal(size=(2000, 3))
    xs, ys = gs.sample(x, y, 0.1, seed=1)
    assert len(ys) == 200
    assert np.quantile(ys, [0.1, 0.5, 0.9]) == pytest.approx(np.quantile(y, [0.1, 0.5, 0.9]), rel=0.1)


def test_sample_handles_one_hot_dicts_and_seeds():
    y = np.eye(3)[np.array([0] * 50 + [1] * 30 + [2] * 20)]
    x = {"a": np.arange(100), "b": np.arange(100) * 2}
    xs, ys = gs.sample(x, y, 0.5, seed=3)
    assert ys.sum(axis=0).tolist() == [25, 15, 10]
    assert np.array_equal(xs["b"], xs["a"] * 2)
    again, _ = gs.sample(x, y, 0.5, seed=3)
    assert np.array_equal(again["a"], xs["a"])
    plain, _ = gs.sample(x, y, 0.5, stratify=False)
    assert len(plain["a"]) == 50


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(fraction=0), r"fraction must be a number in \(0, 1\].*fraction=0\)"),
        (dict(fraction=1.5), r"fraction must be a number in \(0, 1\].*fraction=1\.5\)"),
        (dict(fraction="0.1"), r"fraction must be a number"),
        (dict(fraction=0.1, y=np.zeros(99)), r"x and y must have the same number of samples \(got x with 100, y with 99\)"),
        (dict(fraction=0.1, y=np.array([0] * 95 + [1] * 5)), r"class 1 of y is too rare to stratify: it has 5 samples.*at least 10"),
        (dict(fraction=0.001), r"keeps no sample"),
        (dict(fraction=0.1, stratify=np.zeros(3)), r"stratify must be True, False or one label per sample"),
    ],
)
def test_sample_errors_name_the_argument(kwargs, message):
    kwargs.setdefault("y", np.array([0, 1] * 50))
    with pytest.raises(gs.GridSpecError, match=message):
        gs.sample(np.zeros((100, 2)), **kwargs)


# -- command line --------------------------------------------------------------------------
USER_MODULE = '''
import numpy as np
import keras
import gridspec as gs

@gs.train_data
def train():
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(size=(16, 16)).astype("float32")
        yield x, np.tanh(x[:, :1])

@gs.val_data
def val():
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.normal(size=(16, 16)).astype("float32")
        yield x, np.tanh(x[:, :1])

@gs.grid(lr=[0.01, 0.001], act=["tanh", "relu"])
def build(lr, act):
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation=act),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model
'''


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gridspec", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_run_saves_the_best_model_logs_tensorboard_plots_and_shows_effects(tmp_path):
    (tmp_path / "models.py").write_text(USER_MODULE)
    done = run_cli("run", "models.py:build", "--epochs", "2", "--steps-per-epoch", "3",
                   "--validation-steps", "2", "--save-best", "out/best.keras", "--tensorboard", "logs",
                   "--plot", "search.png", cwd=tmp_path)
    assert done.returncode == 2 and "does not exist" in done.stderr  # out/ is missing: said up front
    assert "Traceback" not in done.stderr and "Model 1 of" not in done.stdout

    (tmp_path / "out").mkdir()
    done = run_cli("run", "models.py:build", "--epochs", "2", "--steps-per-epoch", "3",
                   "--validation-steps", "2", "--save-best", "out/best.keras", "--tensorboard", "logs",
                   "--plot", "search.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert os.listdir(tmp_path / "out") == ["best.keras"]
    assert sorted(r for r in os.listdir(tmp_path / "logs") if r.startswith("trial-")) == [
        "trial-0001", "trial-0002", "trial-0003", "trial-0004"]
    png_size(tmp_path / "search.png")
    out = done.stdout
    assert "Effects on val_loss" in out and "lr: spread" in out and "act: spread" in out
    assert "Best model saved to out/best.keras (trial" in out
    assert "Plot written to search.png" in out and "TensorBoard logs in logs" in out


def test_best_model_file_keeps_the_best_whatever_the_finishing_order(tmp_path):
    from gridspec.artifacts import BestModelFile, staged_model_path

    keeper = BestModelFile(str(tmp_path / "best.keras"), "min")

    def finish(number, score, status="COMPLETE"):
        os.makedirs(keeper.staging, exist_ok=True)
        with open(staged_model_path(keeper.staging, number), "w") as f:
            f.write(f"model of trial {number}")
        return keeper.offer(trial(number, status, score if status != "FAILED" else None, a=number))

    assert finish(3, 0.5) and finish(5, 0.2)
    assert not finish(1, 0.9) and not finish(6, 0.2)  # worse, and a tie lost to a lower number
    assert finish(2, 0.2)  # a tie won by a lower number (parallel workers finish out of order)
    assert not finish(4, None, "FAILED")
    assert (tmp_path / "best.keras").read_text() == "model of trial 2"
    assert os.listdir(keeper.staging) == []  # every other staged model deleted at once
    # a trial resumed from a journal (no staged model) that beats the rest keeps the file
    keeper.offer(trial(7, score=0.1, a=7))
    assert not finish(8, 0.15) and (tmp_path / "best.keras").read_text() == "model of trial 2"
    keeper.close()
    assert sorted(os.listdir(tmp_path)) == ["best.keras"]
