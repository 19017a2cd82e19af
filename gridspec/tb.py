"""TensorBoard output of a search: one run per trial and the HParams experiment summary.

Owns the layout under ``tensorboard_dir`` and the HParams records, written with
TensorBoard's hparams plugin API (``tensorboard.plugins.hparams``)::

    DIR/                     the experiment: axes (hparams) and metrics (hparams_config)
    DIR/trial-0001/          the trial's session: its params, its score, its end status
    DIR/trial-0001/train     its training curves (Keras' TensorBoard callback)
    DIR/trial-0001/validation

Named ``tb`` so that it never shadows the ``tensorboard`` package. TensorFlow and
TensorBoard are imported when first needed; a missing ``tensorboard`` says which extra to
install. Knows nothing of strategies, executors or the journal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gridspec.result import Trial, TrialStatus
from gridspec.values import display

__all__ = ["SCORE_TAG", "hparam_domain", "require", "run_dir", "write_experiment", "write_session"]

SCORE_TAG = "score"  # the scalar holding each trial's score (its objective's best epoch)
_HP_TYPES = (bool, int, float, str)


def require() -> Any:
    """The hparams plugin API, or ``MissingExtra`` naming the extra to install."""
    from gridspec.errors import require_extra

    return require_extra("tensorboard.plugins.hparams.api", "tensorboard", "tensorboard_dir= (--tensorboard)")


def run_dir(root: str, number: int, size: int) -> str:
    """The run of trial ``number``: ``trial-0007``, zero-padded so runs sort by number."""
    width = max(4, len(str(size)))
    return os.path.join(root, f"trial-{number:0{width}d}")


def hparam_domain(values: Sequence[Any]) -> tuple[type, Callable[[Any], Any]]:
    """An axis' HParams type and the converter of its values to that type.

    HParams values must be bool, int, float or str, one type per axis: numbers of mixed
    types become floats; anything else (lists of layer sizes, classes, mixed types) becomes
    its short text (``[32, 16]``, ``Adam``), so the dashboard can still group by it.
    """
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and kinds <= set(_HP_TYPES):
        kind = kinds.pop()
        return kind, kind
    if kinds and kinds <= {int, float}:
        return float, float
    return str, lambda v: v if isinstance(v, str) else display(v)


def _experiment_metrics(hp: Any, objective: str) -> list[Any]:
    name = objective.removeprefix("val_")
    validation = objective.startswith("val_")
    return [
        hp.Metric(SCORE_TAG, display_name=f"{objective} (best epoch)"),
        hp.Metric(f"epoch_{name}", group="validation" if validation else "train", display_name=objective,
                  dataset_type=hp.Metric.VALIDATION if validation else hp.Metric.TRAINING),
    ]


def write_experiment(root: str, axes: Mapping[str, Sequence[Any]], objective: str) -> None:
    """The experiment summary at the root: every axis with its values, and the metrics."""
    hp = require()
    import tensorflow as tf

    hparams = []
    for name, values in axes.items():
        kind, convert = hparam_domain(values)
        hparams.append(hp.HParam(name, hp.Discrete(sorted({convert(v) for v in values}), dtype=kind)))
    os.makedirs(root, exist_ok=True)
    writer = tf.summary.create_file_writer(root)
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=_experiment_metrics(hp, objective))
    writer.close()


def write_session(path: str, trial: Trial, axes: Mapping[str, Sequence[Any]], started: float) -> None:
    """A trial's HParams session: its params, its score, and whether it completed."""
    hp = require()
    import tensorflow as tf
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hp_summary

    values = {}
    for name, value in trial.params.items():
        _, convert = hparam_domain(axes.get(name, (value,)))
        values[name] = convert(value)
    status = {
        TrialStatus.COMPLETE: api_pb2.STATUS_SUCCESS,
        TrialStatus.PRUNED: api_pb2.STATUS_SUCCESS,
        TrialStatus.FAILED: api_pb2.STATUS_FAILURE,
    }[trial.status]
    writer = tf.summary.create_file_writer(path)
    with writer.as_default():
        hp.hparams(values, trial_id=os.path.basename(path), start_time_secs=started)
        if trial.score is not None:
            tf.summary.scalar(SCORE_TAG, trial.score, step=trial.best_epoch or 0)
        end = hp_summary.session_end_pb(status)
        tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)
    writer.close()
