"""How a search ended, in words: the one text that ``print(result)``, ``gridspec run`` and
``gridspec show`` end with::

    Best params found: {'lr': 0.001, 'act_in': 'tanh', 'act_out': 'tanh'}
    Best score: val_loss 0.0113389 (trial 5)
    12 trials (12 complete, 0 failed) in 41.3s; objective val_loss (min)
    rank  trial      val_loss  epoch  params
       1      5     0.0113389      3  lr=0.001, act_in='tanh', act_out='tanh'
    ...
    trial 3 failed: ValueError: ...

"Best params found" is the Python ``repr`` of ``best_params`` whenever that reads back with
``ast.literal_eval`` as the same values (numbers, strings, lists, dicts...), so a script can
parse the line. Otherwise (a function, a Keras object, a NaN) there is no text that reads
back, and each value is written as the leaderboard writes it, whole and without a memory
address: ``{'act': my_act, 'reg': L2(l2=0.0001)}``. Neither is ever cut.

Plain data: knows the result records and the value formatter, nothing else.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from gridspec.result import SearchResult
from gridspec.values import display

__all__ = ["FAILURES_SHOWN", "best_params_text", "ending"]

FAILURES_SHOWN = 3  # failed trials named at the end (``gridspec show --errors`` lists them all)


def best_params_text(params: Mapping[str, Any]) -> str:
    """``params`` as the "Best params found" line writes them (see the module docstring)."""
    params = dict(params)
    text = repr(params)
    try:
        if ast.literal_eval(text) == params:
            return text
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    return "{" + ", ".join(f"{k!r}: {display(v, None)}" for k, v in params.items()) + "}"


def _one_line(error: str | None) -> str:
    return " ".join((error or "").split())


def ending(result: SearchResult, top: int | None = 10, summary: bool = True) -> str:
    """The best params and score, the summary line (``summary=False``: the caller has said
    it its own way), the leaderboard of the ``top`` best trials (None: all) and the first
    failures, each on one line."""
    lines = []
    if result.completed:
        best = result.best
        lines.append(f"Best params found: {best_params_text(best.params)}")
        lines.append(f"Best score: {result.objective} {result.best_score:.6g} (trial {best.number})")
    if summary:
        lines.append(result.summary())
    if result.ranked():
        lines.append(result.leaderboard(top))
    for trial in result.failed[:FAILURES_SHOWN]:
        lines.append(f"trial {trial.number} failed: {_one_line(trial.error)}")
    return "\n".join(lines)
