"""``SearchResult.plot``: one PNG with the leaderboard, learning curves and a panel per axis.

The top chart ranks the best trials by score (the best one highlighted); below it the
learning curves: the objective per epoch of the best trials, each trial's best epoch marked,
and for halving-type searches (trials of several lengths) a dashed line where each rung
ends, so a promoted trial's curve is seen crossing the rungs and a pruned one stopping at
its rung (see ``draw_curves``); below them, one
panel per axis with several values shows every COMPLETE trial's score for each value (a
dot per trial), each value's mean (a bar) and best, with the axis' spread in its title —
the picture form of ``effects()``. Uses matplotlib's object API with the Agg canvas (no
pyplot, no global state, no display needed); matplotlib is imported when first needed and
its absence names the extra to install.
"""

from __future__ import annotations

import math
import os
from typing import Any

from gridspec.effects import effects
from gridspec.result import SearchResult, TrialStatus
from gridspec.values import display, key, shorten

__all__ = ["CURVES", "draw", "draw_curves", "plot"]

CURVES = 8  # learning curves drawn: the best trials'


_BEST = "#d62728"
_OTHER = "#1f77b4"
_MEAN = "#7f7f7f"
_LABEL_WIDTH = 60


def _matplotlib() -> Any:
    from gridspec.errors import require_extra

    backend = require_extra("matplotlib.backends.backend_agg", "plot", "SearchResult.plot()")
    figure = require_extra("matplotlib.figure", "plot", "SearchResult.plot()")
    return figure.Figure, backend.FigureCanvasAgg


def _tick(value: Any) -> str:
    return shorten(display(value, None), 18)


def _label(number: int, params: dict[str, Any]) -> str:
    text = f"#{number} " + ", ".join(f"{k}={_tick(v)}" for k, v in params.items())
    return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 1] + "…"


def plot(result: SearchResult, path: str | os.PathLike[str], top: int = 15, dpi: int = 100) -> str:
    """Draw ``result`` into the PNG file ``path`` and return the path."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        from gridspec.errors import GridSpecError

        raise GridSpecError(f"cannot write the plot to {path!r}: the folder {folder} does not exist")
    draw(result, top, dpi).savefig(path, format="png")
    return path


def _curves(result: SearchResult) -> list[tuple[Any, list[float]]]:
    """The best trials (COMPLETE first, then PRUNED) with their objective per epoch."""
    out = []
    for t in result.ranked():
        curve = [float(v) for v in t.history.get(result.objective, [])]
        if curve:
            out.append((t, curve))
    return out[:CURVES]


def rung_ends(result: SearchResult) -> list[int]:
    """Epochs at which a rung ended: the lengths of trials below the longest, in a search
    that pruned trials (halving-type); none for a grid, even with early-stopped trials."""
    if not result.pruned:
        return []
    lengths = sorted({t.epochs for t in result.trials if t.ok and t.epochs})
    return lengths[:-1]


def draw_curves(result: SearchResult, ax: Any) -> None:
    """The learning-curve panel: ``result.objective`` per epoch of the best trials."""
    curves = _curves(result)
    ends = rung_ends(result)
    for rank, (t, curve) in enumerate(reversed(curves)):  # the best drawn last, on top
        best = rank == len(curves) - 1
        pruned = t.status is TrialStatus.PRUNED
        epochs = list(range(1, len(curve) + 1))
        ax.plot(epochs, curve, color=_BEST if best else _OTHER, alpha=1.0 if best else 0.55,
                linewidth=2.2 if best else 1.1, linestyle=":" if pruned else "-", marker="." if len(curve) < 30 else None,
                label=f"#{t.number}" + (" (pruned)" if pruned else "") + (" best" if best else ""))
        if t.best_epoch:
            ax.scatter([t.best_epoch], [curve[t.best_epoch - 1]], color=_BEST if best else _OTHER, s=30, zorder=4,
                       edgecolor="black", linewidth=0.5)
    for i, end in enumerate(ends):
        ax.axvline(end + 0.5, color=_MEAN, linestyle="--", linewidth=1)
        ax.annotate(f"rung {i + 1} ends", (end + 0.5, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", fontsize=8, color=_MEAN)
    if not curves:
        ax.text(0.5, 0.5, "no curve: no trial completed", ha="center", va="center", transform=ax.transAxes)
    what = f"the best {len(curves)} trial{'s' if len(curves) != 1 else ''}"
    rungs = f"; dashed lines: where each of the {len(ends) + 1} rungs ends" if ends else ""
    ax.set_title(f"Learning curves: {result.objective} per epoch of {what} (dots: best epoch){rungs}",
                 loc="left", fontsize=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel(result.objective, fontsize=9)
    if curves:
        longest = max(len(c) for _, c in curves)
        ax.set_xticks(range(1, longest + 1) if longest <= 20 else ax.get_xticks())
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], fontsize=7, loc="best", ncols=2)  # the best first
    ax.grid(alpha=0.3)


def draw(result: SearchResult, top: int = 15, dpi: int = 100) -> Any:
    """The figure ``plot`` saves (a matplotlib ``Figure``, Agg canvas): the leaderboard,
    the learning curves and one panel per axis."""
    Figure, FigureCanvasAgg = _matplotlib()
    lower = result.direction == "min"
    better_word = "lower is better" if lower else "higher is better"
    ranked = [t for t in result.ranked() if t.status is TrialStatus.COMPLETE]
    shown = ranked[:top]
    axes_effects = effects(result).ranked()  # the axis that mattered most first
    columns = min(3, max(1, len(axes_effects)))
    panel_rows = math.ceil(len(axes_effects) / columns) if axes_effects else 0
    board_height = 1.4 + 0.3 * max(1, len(shown))
    curves_height = 3.6
    figure = Figure(figsize=(11, board_height + curves_height + 3.2 * panel_rows), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    if panel_rows:
        top_figure, curves_figure, panels_figure = figure.subfigures(
            3, 1, height_ratios=[board_height, curves_height, 3.2 * panel_rows])
    else:
        (top_figure, curves_figure), panels_figure = figure.subfigures(2, 1, height_ratios=[board_height, curves_height]), None
    draw_curves(result, curves_figure.add_subplot())
    varying = {e.axis for e in axes_effects} or set(result.axes)
    board = top_figure.add_subplot()
    counts = f"{len(result.completed)} completed, {len(result.failed)} failed"
    if result.pruned:
        counts += f", {len(result.pruned)} pruned"
    if shown:
        labels = [_label(t.number, {k: v for k, v in t.params.items() if k in varying}) for t in shown]
        scores = [float(t.score) for t in shown]  # type: ignore[arg-type]
        positions = list(range(len(shown)))
        colours = [_BEST if i == 0 else _OTHER for i in positions]
        board.scatter(scores, positions, color=colours, zorder=3, s=36)
        for y, score in zip(positions, scores):
            board.annotate(f"{score:.4g}", (score, y), xytext=(5, 0), textcoords="offset points",
                           va="center", fontsize=8)
        board.set_yticks(positions, labels, fontsize=8)
        board.invert_yaxis()  # rank 1 on top
        board.margins(x=0.12)
        title = f"Leaderboard: the best {len(shown)} trials ({counts}); the best in red"
    else:
        board.text(0.5, 0.5, "no completed trial", ha="center", va="center", transform=board.transAxes)
        board.set_yticks([])
        title = f"Leaderboard: {counts}"
    board.set_title(title, loc="left", fontsize=11)
    board.set_xlabel(f"{result.objective} ({better_word})")
    board.grid(alpha=0.3)

    completed = result.completed
    best = ranked[0] if ranked else None
    panels = panels_figure.subplots(panel_rows, columns, squeeze=False) if panels_figure is not None else []
    for ax in [a for row in panels for a in row][len(axes_effects):]:
        ax.set_visible(False)
    for i, effect in enumerate(axes_effects):
        ax = panels[i // columns][i % columns]
        for x, value_effect in enumerate(effect.values):
            wanted = key(value_effect.value)
            scores = [float(t.score) for t in completed  # type: ignore[arg-type]
                      if effect.axis in t.params and key(t.params[effect.axis]) == wanted]
            is_best = value_effect.count and key(effect.best_value) == wanted
            colour = _BEST if is_best else _OTHER
            if value_effect.mean is not None:
                ax.bar(x, value_effect.mean, width=0.6, color=colour, alpha=0.18, edgecolor=colour)
            offsets = [((j % 7) - 3) * 0.04 for j in range(len(scores))]  # a fixed jitter
            ax.scatter([x + o for o in offsets], scores, color=colour, s=16, zorder=3)
            if best is not None and effect.axis in best.params and key(best.params[effect.axis]) == wanted:
                ax.scatter([x], [best.score], marker="*", s=140, color=_BEST, edgecolor="black",
                           linewidth=0.6, zorder=4)
        ax.set_xticks(range(len(effect.values)), [_tick(v.value) for v in effect.values],
                      fontsize=8, rotation=20 if len(effect.values) > 4 else 0)
        scored = [float(t.score) for t in completed]  # type: ignore[arg-type]
        low, high = min(scored), max(scored)
        pad = (high - low) * 0.1 or abs(high) * 0.05 or 0.05
        ax.set_ylim(low - pad, high + pad)  # bars show the means; the range shows differences
        spread = "-" if effect.spread is None else f"{effect.spread:.3g}"
        ax.set_title(f"{effect.axis} (spread of means {spread})", fontsize=10)
        ax.set_ylabel(result.objective, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if panels_figure is not None:
        panels_figure.suptitle("Score per value of each axis: dots are trials, bars are means, "
                               "red is the best mean, the star the best trial", fontsize=10)
    return figure
