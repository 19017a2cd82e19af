"""TensorBoard output of a search: one run per trial and the HParams experiment summary.

Owns the layout under ``tensorboard_dir`` and the records in it::

    DIR/                     nothing but the runs (no empty "." run in TensorBoard's lists)
    DIR/trial-0001/          the trial's session: the experiment summary (axes and metric)
                             and its params, written as it starts; its score and end status,
                             written as it ends
    DIR/trial-0001/train     its training curves (``CurveWriter``, at each epoch's end)
    DIR/trial-0001/validation

Every record is written with the ``tensorboard`` package's own protos and record writer
(``summary_v2`` of the hparams and scalar plugins), never with TensorFlow, so TensorBoard
logs work on every Keras backend and where TensorFlow is not installed. Named ``tb`` so
that it never shadows the ``tensorboard`` package; a missing ``tensorboard`` says which
extra to install. Knows nothing of strategies, executors or the journal.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gridspec.result import Trial, TrialStatus
from gridspec.values import display

__all__ = ["SCORE_TAG", "EventFile", "end_session", "hparam_domain", "require", "run_dir", "start_session",
           "write_experiment"]

SCORE_TAG = "score"  # the scalar holding each trial's score (its objective's best epoch)
_HP_TYPES = (bool, int, float, str)
_FILES = itertools.count()


def require() -> Any:
    """TensorBoard's hparams summaries, or ``MissingExtra`` naming the extra to install."""
    from gridspec.errors import require_extra

    return require_extra("tensorboard.plugins.hparams.summary_v2", "tensorboard", "tensorboard_dir= (--tensorboard)")


class EventFile:
    """One event file in ``folder``, in the format TensorBoard reads (TFRecord-framed
    ``Event`` protos), written synchronously: a record is on disk once ``flush`` returns."""

    def __init__(self, folder: str) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        os.makedirs(folder, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}.v2"
        self._event = event_pb2.Event
        self._records = RecordWriter(open(os.path.join(folder, name), "wb"))
        self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def summary(self, summary: Any, step: int = 0) -> None:
        self._write(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        self.summary(scalar_pb(tag, float(value)), step)

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        self._records.close()


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
    """The one HParams metric: the score, the objective at each trial's best epoch.

    Not the objective's last-epoch value (``epoch_val_loss``): a column of it beside the
    score would sort trials by their final epoch, which is not what the search compares.
    """
    return [hp.Metric(SCORE_TAG, display_name=f"{objective} (best epoch)")]


def _experiment(hp: Any, axes: Mapping[str, Sequence[Any]], objective: str) -> Any:
    hparams = []
    for name, values in axes.items():
        kind, convert = hparam_domain(values)
        hparams.append(hp.HParam(name, hp.Discrete(sorted({convert(v) for v in values}), dtype=kind)))
    return hp.hparams_config_pb(hparams=hparams, metrics=_experiment_metrics(hp, objective))


def write_experiment(root: str, axes: Mapping[str, Sequence[Any]], objective: str) -> None:
    """Prepare ``root`` for the search's runs.

    The experiment summary (every axis with its values, and the metric) is written into each
    trial's run by ``start_session``, not into ``root`` itself: a summary at the root makes
    TensorBoard list an empty run named "." first in every run list. The HParams dashboard
    takes the summary from whichever run holds it (they are all the same).
    """
    require()
    os.makedirs(root, exist_ok=True)


def _values(params: Mapping[str, Any], axes: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    values = {}
    for name, value in params.items():
        _, convert = hparam_domain(axes.get(name, (value,)))
        values[name] = convert(value)
    return values


def start_session(path: str, params: Mapping[str, Any], axes: Mapping[str, Sequence[Any]], objective: str,
                  started: float) -> None:
    """As a trial starts: its HParams session (its params) and the experiment summary, so the
    dashboard lists the trial while it trains (TensorBoard's status "Unknown" until it ends;
    its reader keeps the first status a run records, so none is written before the real one)."""
    hp = require()
    events = EventFile(path)
    events.summary(_experiment(hp, axes, objective))
    events.summary(hp.hparams_pb(_values(params, axes), trial_id=os.path.basename(path), start_time_secs=started))
    events.close()


def end_session(path: str, trial: Trial) -> None:
    """As a trial ends: its score and its end status (Success, or Failure).

    The score is logged at the step of its best epoch on the curves (counted from 0, as
    Keras counts epochs; ``best_epoch`` counts from 1), so its dot sits on its curve.
    """
    require()
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    status = {
        TrialStatus.COMPLETE: api_pb2.STATUS_SUCCESS,
        TrialStatus.PRUNED: api_pb2.STATUS_SUCCESS,
        TrialStatus.FAILED: api_pb2.STATUS_FAILURE,
    }[trial.status]
    events = EventFile(path)
    if trial.score is not None:
        events.scalar(SCORE_TAG, trial.score, step=max(0, (trial.best_epoch or 1) - 1))
    end = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time()))
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(end),
                      tensor=metadata.NULL_TENSOR)
    events.summary(summary)
    events.close()

