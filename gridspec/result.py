"""The search's outcome: ``Trial``, ``TrialStatus`` and ``SearchResult``, and their exports.

Owns the frozen records users get back, ranking and the leaderboard text. Values are plain
data so a record can travel through a process boundary or a JSON journal and come back
equal. Knows nothing of Keras, executors or how the trials were run.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from gridspec.frozen import FrozenDict, freeze_history, freeze_params
from gridspec.objective import best_of, better
from gridspec.values import axis_displays, cell, display, key, plain

__all__ = ["SearchResult", "Trial", "TrialStatus", "best_of", "better"]


class TrialStatus(enum.Enum):
    """What became of a trial. PRUNED trials stopped early on purpose (halving)."""

    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"

    def __repr__(self) -> str:
        return f"TrialStatus.{self.name}"


def _int_tuple(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@attrs.frozen
class Trial:
    """One combination's training run: its parameters, its curve, and its score."""

    number: int  # 1-based position in grid order
    params: FrozenDict[str, Any] = attrs.field(converter=freeze_params)
    status: TrialStatus
    score: float | None = None
    history: FrozenDict[str, tuple[float, ...]] = attrs.field(factory=FrozenDict, converter=freeze_history)
    best_epoch: int | None = None  # 1-based epoch the score comes from
    epochs: int = 0  # epochs actually trained
    duration: float = 0.0  # seconds
    error: str | None = None  # "ExceptionType: message"
    traceback: str | None = attrs.field(default=None, repr=False)
    # the other trials of the fused group it trained in; () when it trained alone
    fused_with: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)

    @property
    def ok(self) -> bool:
        return self.status is not TrialStatus.FAILED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``Trial.from_dict`` reads it back."""
        return {
            "number": self.number,
            "params": dict(self.params),
            "status": self.status.value,
            "score": self.score,
            "history": {k: list(v) for k, v in self.history.items()},
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "duration": self.duration,
            "error": self.error,
            "traceback": self.traceback,
            "fused_with": list(self.fused_with),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        return cls(
            number=int(data["number"]),
            params=data["params"],
            status=TrialStatus(data["status"]),
            score=None if data.get("score") is None else float(data["score"]),
            history=data.get("history") or {},
            best_epoch=data.get("best_epoch"),
            epochs=int(data.get("epochs") or 0),
            duration=float(data.get("duration") or 0.0),
            error=data.get("error"),
            traceback=data.get("traceback"),
            fused_with=tuple(int(n) for n in data.get("fused_with") or ()),
        )


def _strict(value: Any) -> Any:
    """``value`` as strict JSON data: non-finite numbers as ``null`` (a bare ``NaN`` is not
    JSON), numpy values as Python ones, other values (classes and functions too) by their short
    text whole, as a CSV cell shows them: ``Adam``, ``L2(l2=0.0001)``."""
    value = plain(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return display(value, None)


def _fmt_score(score: float | None) -> str:
    if score is None:
        return "-"
    return f"{score:.6g}"


@attrs.frozen
class SearchResult:
    """Every trial of a search, in trial-number order, and how they compare."""

    trials: tuple[Trial, ...] = attrs.field(converter=lambda ts: tuple(sorted(ts, key=lambda t: t.number)))
    objective: str
    direction: str  # "min" | "max"
    duration: float = 0.0
    axes: tuple[str, ...] = ()
    # What ran the search (the grid function and settings), for refit; not part of equality.
    context: Any = attrs.field(default=None, eq=False, repr=False)

    # -- selection -------------------------------------------------------------------------
    @property
    def completed(self) -> tuple[Trial, ...]:
        return tuple(t for t in self.trials if t.status is TrialStatus.COMPLETE)

    @property
    def failed(self) -> tuple[Trial, ...]:
        return tuple(t for t in self.trials if t.status is TrialStatus.FAILED)

    @property
    def pruned(self) -> tuple[Trial, ...]:
        return tuple(t for t in self.trials if t.status is TrialStatus.PRUNED)

    def ranked(self) -> list[Trial]:
        """Scored trials best first: COMPLETE ones, then PRUNED ones; ties by number."""
        sign = -1.0 if self.direction == "max" else 1.0

        def key(t: Trial) -> tuple[int, float, int]:
            assert t.score is not None
            return (0 if t.status is TrialStatus.COMPLETE else 1, sign * t.score, t.number)

        return sorted((t for t in self.trials if t.ok and t.score is not None), key=key)

    @property
    def best(self) -> Trial:
        """The best COMPLETE trial; ``SearchError`` if none completed."""
        ranked = [t for t in self.ranked() if t.status is TrialStatus.COMPLETE]
        if not ranked:
            from gridspec.errors import SearchError

            first = self.failed[0].error if self.failed else None
            raise SearchError(
                "no trial completed, so there is no best trial"
                + (f"; the first error was {first}" if first else ""),
                first_error=first,
            )
        return ranked[0]

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params)

    @property
    def best_score(self) -> float:
        score = self.best.score
        assert score is not None
        return score

    # -- exports ---------------------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        """One flat row per trial, in trial-number order (scikit-learn's ``cv_results_`` habit)."""
        ranks = {t.number: i for i, t in enumerate(self.ranked(), start=1)}
        axes = self.axes or tuple(dict.fromkeys(k for t in self.trials for k in t.params))
        history_keys = list(dict.fromkeys(k for t in self.trials for k in t.history))
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"number": t.number, "status": t.status.value, "params": t.params}
            for axis in axes:
                row[f"param_{axis}"] = t.params.get(axis)
            row.update(
                score=t.score,
                rank=ranks.get(t.number),
                best_epoch=t.best_epoch,
                epochs=t.epochs,
                fit_time=t.duration,
            )
            for key in history_keys:
                values = t.history.get(key)
                row[key] = values[-1] if values else None
            row["error"] = t.error
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "direction": self.direction,
            "duration": self.duration,
            "axes": list(self.axes),
            "best_params": self.best_params if self.completed else None,
            "best_score": self.best_score if self.completed else None,
            # an axis a trial's sub-grid leaves out is null, so every trial lists every axis
            "trials": [{**t.to_dict(), "params": {**t.params, **{a: None for a in self.axes if a not in t.params}}}
                       for t in self.trials],
        }

    def to_json(self, path: str | None = None) -> str:
        """The whole result as strict JSON: ``null`` for a non-finite number, axis values that
        are not JSON data as their short text (``L2(l2=0.0001)``)."""
        text = json.dumps(_strict(self.to_dict()), indent=2, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def to_csv(self, path: str | None = None) -> str:
        """The records as CSV; ``params`` (a dict) is left out in favour of ``param_*``."""
        rows = self.to_records()
        fields = [k for k in (rows[0] if rows else {"number": None}) if k != "params"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (cell(v) if k.startswith("param_") else v) for k, v in row.items()})
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    def to_dataframe(self) -> Any:
        """The records as a ``pandas.DataFrame`` (needs pandas: ``pip install "gridspec[pandas]"``)."""
        from gridspec.errors import require_extra

        pd = require_extra("pandas", "pandas", "SearchResult.to_dataframe()")
        return pd.DataFrame.from_records(self.to_records()).set_index("number")

    # -- after the search (gridspec.refit, gridspec.effects, gridspec.plot) ----------------
    def refit(self, **settings: Any) -> Any:
        """Rebuild the best combination, train it, and return the ``keras.Model``.

        Settings (``epochs``, ``steps_per_epoch``, ``validation_steps``, ``train``, ``val``,
        ``seed``, ``callbacks``, ``verbose``) default to the search's; ``train``/``val`` also
        take an in-memory ``(x, y)`` pair. ``SearchError`` if no trial completed.
        """
        best = self.best  # SearchError when no trial completed
        if self.context is None:
            from gridspec.errors import GridSpecError

            raise GridSpecError(
                "refit() needs the result of search() in this Python session: a result read back "
                f"from JSON or a journal does not know its model function; run "
                f"build(**{dict(best.params)!r}) and fit it yourself, or search again"
            )
        return self.context.refit(self, **settings)

    def effects(self) -> Any:
        """For each axis with several values: each value's count, best and mean score."""
        from gridspec.effects import effects

        return effects(self)

    def plot(self, path: str, top: int = 15) -> str:
        """A PNG: the leaderboard, learning curves of the best trials (halving's rungs
        marked) and one panel per axis (needs ``gridspec[plot]``)."""
        from gridspec.plot import plot

        return plot(self, path, top=top)

    # -- text ------------------------------------------------------------------------------
    def leaderboard(self, top: int | None = 10) -> str:
        """A plain-text table of the best trials, readable in a terminal and a log file."""
        ranked = self.ranked()
        shown = ranked if top is None else ranked[:top]
        # columns as wide as their widest entry: trial 123456 and val_binary_io_u stay aligned
        rank_w = max(4, len(str(len(shown))))
        trial_w = max([5] + [len(str(t.number)) for t in shown])
        score_w = max(12, len(self.objective))
        header = f"{'rank':>{rank_w}}  {'trial':>{trial_w}}  {self.objective:>{score_w}}  {'epoch':>5}  params"
        lines = [header]
        texts = axis_displays(t.params for t in self.trials)  # never two rows alike
        for rank, t in enumerate(shown, start=1):
            params = ", ".join(f"{k}={texts[(k, key(v))]}" for k, v in t.params.items())
            tag = "" if t.status is TrialStatus.COMPLETE else f"  ({t.status.value.lower()})"
            lines.append(
                f"{rank:>{rank_w}}  {t.number:>{trial_w}}  {_fmt_score(t.score):>{score_w}}  "
                f"{t.best_epoch or '-':>5}  {params}{tag}"
            )
        if len(ranked) > len(shown):
            lines.append(f"   … {len(ranked) - len(shown)} more")
        return "\n".join(lines)

    def summary(self) -> str:
        counts = f"{len(self.completed)} complete, {len(self.failed)} failed"
        if self.pruned:
            counts += f", {len(self.pruned)} pruned"
        return (
            f"{len(self.trials)} trials ({counts}) in {self.duration:.1f}s; "
            f"objective {self.objective} ({self.direction})"
        )

    def __str__(self) -> str:
        """How the search ended, as ``gridspec run`` prints it (``gridspec.ending``)."""
        from gridspec.ending import ending

        return ending(self)
