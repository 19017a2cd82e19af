"""``gridspec``'s commands: ``run``, ``plan``, ``list`` and ``show``, each writing to ``out``
and returning an exit status; and loading the user's code, whose import errors become a
one-paragraph message.

Every output path (``--json``, ``--csv``, ``--plot``, ``--save-best``) is checked before
anything trains.
"""

from __future__ import annotations

import argparse
import os
import traceback
from typing import Any, TextIO

from gridspec.errors import GridSpecError, LookupFailed, SearchError, SearchInterrupted
from gridspec.settings import SearchSettings
from gridspec.values import display_params


# -- loading the user's code -------------------------------------------------------------------
def _import_error(what: str, exc: BaseException) -> GridSpecError:
    """An exception raised while importing the user's module, as a one-paragraph message."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename and os.sep + "gridspec" + os.sep not in f.filename]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    message = str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
        message = exc.msg  # str(exc) already ends with the location
    return LookupFailed(f"cannot import {what}: {type(exc).__name__}: {message}{where}")


def _load_grid(target: str) -> Any:
    from gridspec.registry import load_target, split_target

    module, _ = split_target(target)
    try:
        return load_target(target)
    except GridSpecError:
        raise
    except Exception as exc:
        raise _import_error(module, exc) from exc


# -- commands ----------------------------------------------------------------------------------
def settings_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``gridspec run``'s options give, by their fields' ``Flag``s: an option
    left out leaves its setting at the default."""
    settings: dict[str, Any] = {}
    for name, flag in SearchSettings.flags():
        value = getattr(args, flag.dest)
        if value is None:
            continue
        value = flag.to_setting(value) if flag.to_setting is not None else value
        if flag.key is not None:
            settings.setdefault(name, {})[flag.key] = value
        else:
            settings[name] = value
    return settings



def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from gridspec.display import make_display
    from gridspec.ending import ending
    from gridspec.engine import run_search

    if args.fresh and not args.storage:
        raise GridSpecError("--fresh starts a new search in a journal file; give --storage PATH too")
    if args.storage is not None and (not args.storage.strip() or args.storage == ":memory:"):
        raise GridSpecError(f"--storage {args.storage!r} is not a file path; give one such as "
                            f"--storage search.sqlite, or leave --storage out to keep no journal")
    settings = SearchSettings.create(**settings_from_flags(args))  # every setting checked before the import
    _check_output_path("--json", args.json)
    _check_output_path("--csv", args.csv)
    _check_extras(args)
    _check_plot_option(args)
    grid = _load_grid(args.target)
    try:
        # search() closes the display
        result = run_search(grid, settings.evolve(verbose=make_display(out, live=False if args.no_live else None)))
    except SearchInterrupted as exc:  # Ctrl-C or SIGTERM: what finished is still reported
        if exc.result is not None:
            if exc.result.trials:
                out.write(exc.result.summary() + "\n")
            if exc.result.ranked():
                out.write(exc.result.leaderboard(top=_top(args.top)) + "\n")
            _write_files(exc.result, args, out)  # however little finished: the files say so
        raise
    except SearchError as exc:  # every trial failed, or --max-failures: the files still say so
        if exc.result is not None:
            _write_files(exc.result, args, out)
        raise
    out.write(ending(result, top=_top(args.top)) + "\n")
    _write_insights(result, args, out)
    _write_files(result, args, out)
    return 0


def _top(top: int) -> int | None:
    """``--top 0`` lists every row, in ``run`` as in ``show``."""
    return None if top <= 0 else top


def _check_output_path(option: str, path: str | None) -> None:
    """Say before anything trains that an output file can't be written."""
    if path is None:
        return
    if not path.strip():
        raise GridSpecError(f"{option} needs a file path, such as {option} results{option.replace('--', '.')}")
    if os.path.isdir(path):
        raise GridSpecError(f"{option} {path}: that is a folder; give a file path such as "
                            f"{os.path.join(path, 'results' + option.replace('--', '.'))}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GridSpecError(f"{option} {path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise GridSpecError(f"{option} {path}: cannot write there (permission denied); give another path")


def _write_files(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    """``--json`` and ``--csv``; a failure to write one is reported after the rest is done."""
    problems = []
    for option, path, write in (("--json", args.json, result.to_json), ("--csv", args.csv, result.to_csv)):
        if not path:
            continue
        try:
            write(path)
        except OSError as exc:
            problems.append(f"{option} {path}: {exc.strerror or exc}")
            continue
        out.write(f"{'JSON' if option == '--json' else 'CSV'} written to {path}\n")
    if problems:
        raise GridSpecError("cannot write " + "; ".join(problems) + " (the search itself finished)")


# -- after the search: effects, the best model, TensorBoard, the plot -------------------------
def _check_extras(args: argparse.Namespace) -> None:
    """Every optional package this run needs, named in one message when several are missing."""
    from gridspec.errors import require_extras

    needs = [("matplotlib", "plot", "--plot", "matplotlib")] if getattr(args, "plot", None) else []
    if getattr(args, "tensorboard", None):
        needs.append(("tensorboard.plugins.hparams.summary_v2", "tensorboard", "--tensorboard", "tensorboard"))
    if getattr(args, "executor", None) == "ray":
        needs.append(("ray", "ray", "--executor ray", "Ray"))
    require_extras(needs)


def _check_plot_option(args: argparse.Namespace) -> None:
    """Say before anything trains that --plot can't work (no matplotlib, a missing folder)."""
    path = getattr(args, "plot", None)
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GridSpecError(f"--plot {path}: the folder {folder} does not exist; create it first")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from gridspec.errors import install_hint

        raise GridSpecError(f"--plot needs matplotlib; install it with {install_hint(['plot'])}") from None


def _write_insights(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    """The effects section, then where the best model, the logs and the plot went."""
    effects = result.effects()
    if len(effects):
        out.write(str(effects) + "\n")
    if getattr(args, "save_best", None) and result.completed:
        if os.path.exists(args.save_best):
            out.write(f"Best model saved to {args.save_best} (trial {result.best.number}, epoch {result.best.best_epoch})\n")
        else:
            out.write(f"Best model not saved to {args.save_best}: the model could not be saved (see the note above)\n")
    if getattr(args, "tensorboard", None):
        out.write(f"TensorBoard logs in {args.tensorboard} (tensorboard --logdir {args.tensorboard})\n")
    if getattr(args, "plot", None):
        result.plot(args.plot)
        out.write(f"Plot written to {args.plot}\n")


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    import itertools

    from gridspec.space import MAX_UNCAPPED
    from gridspec.values import display

    grid = _load_grid(args.target)
    space = grid.space
    out.write(f"{grid.fn.__qualname__}: {space.describe()}\n")
    if len(space.parts) > 1:
        for number, part in enumerate(space.parts, start=1):
            axes = ", ".join(f"{axis.name}={display(list(axis.values))}" for axis in part.axes)
            out.write(f"  sub-grid {number}: {part.shape()}: {axes}\n")
    # a where= over more than the cap is counted by the search (one pass), not by plan
    size = space.size if space.where is None or space.product_size <= MAX_UNCAPPED else None
    width = len(str(size if size is not None else space.product_size))
    shown = 0
    for params in itertools.islice(space, None if args.limit <= 0 else args.limit):
        shown += 1
        out.write(f"{shown:>{width}} {display_params(params)}\n")
    if size is None and args.limit > 0 and shown == args.limit:
        out.write("… and more (where= is counted when a search runs; --limit 0 lists them all)\n")
    elif size is not None and shown < size:
        out.write(f"… and {size - shown:,} more (--limit 0 lists them all)\n")
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    from gridspec.decorators import accepted_params
    from gridspec.registry import load_module, scan

    if ":" in args.module.replace("\\", "/").split("/")[-1]:
        module_part, _, function = args.module.rpartition(":")
        raise GridSpecError(
            f"gridspec list takes a module, not module:function (got {args.module}); write "
            f"gridspec list {module_part}, or gridspec plan {args.module} for the combinations of {function}()"
        )
    try:
        module = load_module(args.module)
    except GridSpecError:
        raise
    except Exception as exc:
        raise _import_error(args.module, exc) from exc
    registry = scan(module)
    out.write(f"module {registry.module}\n")
    out.write("grids:\n" if registry.grids else "grids: none\n")
    for name, grid in registry.grids:
        out.write(f"  {name}: {grid.space.describe()}\n")
    out.write("data factories:\n" if registry.factories else "data factories: none\n")
    for factory in registry.factories:
        names, _ = accepted_params(factory.fn)
        takes = f" (takes {', '.join(sorted(names))})" if names else ""
        out.write(f"  {factory.label}{takes}\n")
    return 0


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    from gridspec.journal import load

    _check_plot_option(args)
    if args.watch:
        from gridspec.display import live_possible
        from gridspec.display.watch import watch

        stored = watch(args.path, out, args.search, _top(args.top), args.interval, live=live_possible(out))
    else:
        stored = load(args.path, args.search)
    out.write(stored.report(top=_top(args.top)) + "\n")
    if args.errors:
        failed = stored.result().failed
        out.write(f"errors of the {len(failed)} failed trials:\n" if failed else "errors: no trial failed\n")
        for trial in failed:
            out.write(f"trial {trial.number} {trial.params!r}:\n")
            out.write("".join(f"    {line}\n" for line in (trial.error or "").splitlines()))
    _write_insights(stored.result(), args, out)
    return 0

