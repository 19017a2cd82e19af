"""The ``gridspec`` command: argv -> engine -> terminal. The only module that prints.

User mistakes (``GridSpecError``, an unimportable target, bad arguments) end with a
one-paragraph ``error: ...`` on stderr and exit status 2, never a traceback; a search in
which every trial failed exits 1. TensorFlow's C++ start-up chatter (and the tracebacks it
logs from inside ``tf.data``) is kept off the terminal by pointing file descriptor 2 at
``/dev/null`` (or at ``$GRIDSPEC_TF_LOG``) while Python's own ``sys.stderr`` keeps the
real terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from gridspec.errors import GridSpecError, LookupFailed

__all__ = ["main"]

PLAN_LIMIT = 100


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


def _gpu_list(text: str) -> list[int]:
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        gpus = []
    if not gpus or any(g < 0 for g in gpus):
        raise argparse.ArgumentTypeError(f"must be GPU indices separated by commas, such as 0,1 (got {text!r})")
    return gpus


def _factory_choice(text: str) -> Any:
    return None if text.lower() == "none" else text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridspec",
        description="Declarative grid search for Keras models: train every combination of a "
        "@grid on the same data and compare them.",
    )
    parser.add_argument("--version", action="version", version=f"gridspec {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="train the combinations of a @grid and report the best")
    run.add_argument("target", metavar="TARGET", help="module:function or path/to/file.py:function")
    run.add_argument("--epochs", type=_positive_int, default=1, help="epochs per trial (default 1)")
    run.add_argument("--steps-per-epoch", type=_positive_int, help="training batches per epoch")
    run.add_argument("--validation-steps", type=_positive_int, help="validation batches per epoch")
    run.add_argument("--objective", help="Keras history key to compare (default val_loss, or loss)")
    run.add_argument("--direction", choices=("min", "max"), help="min or max (default from the name)")
    run.add_argument("--strategy", default="grid",
                     help="grid (default), random, halving, asha or hyperband")
    run.add_argument("--eta", type=_positive_int, default=3,
                     help="halving, asha, hyperband: promote the best 1/ETA of each rung to ETA times "
                     "more epochs (default 3)")
    run.add_argument("--min-epochs", type=_positive_int,
                     help="halving, asha: epochs of the first rung; hyperband: of its smallest "
                     "first rung (default 1)")
    run.add_argument("--executor", help="where trials run: process (worker processes even for "
                     "--workers 1) or ray (default: this process, or processes for --workers N)")
    run.add_argument("--address", metavar="ADDR",
                     help="ray: the cluster to connect to, such as auto or ray://head:10001 "
                     "(default: start a local instance)")
    run.add_argument("--trial-cpus", type=float, metavar="N", help="ray: CPUs per trial (default 1)")
    run.add_argument("--trial-gpus", type=float, metavar="N", help="ray: GPUs per trial (default 0)")
    run.add_argument("--max-trials", type=_positive_int, help="train at most N combinations")
    run.add_argument("--workers", type=_positive_int, default=1,
                     help="trials at once, each in its own worker process (default 1: in-process)")
    run.add_argument("--gpus", type=_gpu_list, metavar="0,1", help="one worker process per GPU")
    run.add_argument("--distribute", help="mirrored: each trial trains on all local GPUs")
    run.add_argument("--seed", type=int, default=0, help="random state every trial starts from")
    run.add_argument("--repeats", type=_positive_int, default=1, help="train each combination N times")
    run.add_argument("--train", type=_factory_choice, help="name of the @train_data factory to use")
    run.add_argument("--val", type=_factory_choice, help="name of the @val_data factory, or none")
    run.add_argument("--storage", metavar="PATH",
                     help="SQLite journal of the trials; running again resumes (see --fresh)")
    run.add_argument("--fresh", action="store_true",
                     help="start a new search in --storage's file instead of resuming (keeps the old)")
    run.add_argument("--max-failures", type=_positive_int, metavar="N",
                     help="stop after N failed trials in a row")
    run.add_argument("--json", metavar="PATH", help="write the result as JSON")
    run.add_argument("--csv", metavar="PATH", help="write one row per trial as CSV")
    run.add_argument("--top", type=int, default=5, help="rows of the final leaderboard (default 5)")
    _add_insight_options(run, save=True)
    run.set_defaults(handler=cmd_run)

    plan = commands.add_parser("plan", help="show the combinations of a @grid; trains nothing")
    plan.add_argument("target", metavar="TARGET", help="module:function or path/to/file.py:function")
    plan.add_argument("--limit", type=int, default=PLAN_LIMIT,
                      help=f"list at most N combinations (default {PLAN_LIMIT}; 0 for all)")
    plan.set_defaults(handler=cmd_plan)

    listing = commands.add_parser("list", help="the grids and data factories of a module")
    listing.add_argument("module", metavar="MODULE", help="dotted module name or path/to/file.py")
    listing.set_defaults(handler=cmd_list)

    show = commands.add_parser("show", help="the leaderboard of a stored search (--storage journal)")
    show.add_argument("path", metavar="PATH", help="a journal written by run --storage PATH")
    show.add_argument("--search", type=_positive_int, metavar="N",
                      help="which search of the file (default: the latest)")
    show.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default 10)")
    _add_insight_options(show, save=False)
    show.set_defaults(handler=cmd_show)
    return parser


def _version() -> str:
    from gridspec import __version__

    return __version__


# -- keeping TensorFlow quiet ------------------------------------------------------------------
@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send C-level writes to fd 2 elsewhere; keep Python's ``sys.stderr`` on the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded use): nothing to redirect
        yield
        return
    target = os.environ.get("GRIDSPEC_TF_LOG") or os.devnull
    sink = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None) or "utf-8", errors="backslashreplace")
    os.dup2(sink, 2)
    os.close(sink)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        replaced, sys.stderr = sys.stderr, python_stderr
        replaced.close()


# -- loading the user's code -------------------------------------------------------------------
def _import_error(what: str, exc: BaseException) -> GridSpecError:
    """An exception raised while importing the user's module, as a one-paragraph message."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename and os.sep + "gridspec" + os.sep not in f.filename]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
    return LookupFailed(f"cannot import {what}: {type(exc).__name__}: {exc}{where}")


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
def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from gridspec.engine import search
    from gridspec.progress import Printer
    from gridspec.registry import AUTO

    if args.fresh and not args.storage:
        raise GridSpecError("--fresh starts a new search in a journal file; give --storage PATH too")
    _check_plot_option(args)
    grid = _load_grid(args.target)
    result = search(
        grid,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps,
        objective=args.objective,
        direction=args.direction,
        strategy=args.strategy,
        max_trials=args.max_trials,
        workers=args.workers,
        gpus=args.gpus,
        distribute=args.distribute,
        seed=args.seed,
        repeats=args.repeats,
        eta=args.eta,
        min_epochs=args.min_epochs,
        executor=args.executor,
        address=args.address,
        trial_resources=_trial_resources(args),
        train=AUTO if args.train is None else args.train,
        val=AUTO if args.val is None else args.val,
        storage=args.storage,
        resume=not args.fresh,
        max_failures=args.max_failures,
        verbose=Printer(out),
        save_best=args.save_best,
        tensorboard_dir=args.tensorboard,
    )
    if args.json:
        result.to_json(args.json)
    if args.csv:
        result.to_csv(args.csv)
    out.write(f"Best params found: {result.best_params!r}\n")
    out.write(f"Best score: {result.objective} {result.best_score:.6g} (trial {result.best.number})\n")
    out.write(result.summary() + "\n")
    out.write(result.leaderboard(top=args.top) + "\n")
    for trial in result.failed[:3]:
        out.write(f"trial {trial.number} failed: {trial.error}\n")
    _write_insights(result, args, out)
    return 0


def _trial_resources(args: argparse.Namespace) -> dict[str, float] | None:
    resources = {"num_cpus": args.trial_cpus, "num_gpus": args.trial_gpus}
    chosen = {k: v for k, v in resources.items() if v is not None}
    return chosen or None


# -- after the search: effects, the best model, TensorBoard, the plot -------------------------
def _add_insight_options(parser: argparse.ArgumentParser, save: bool) -> None:
    """``--plot`` (run and show); ``--save-best`` and ``--tensorboard`` (run only)."""
    if save:
        parser.add_argument("--save-best", metavar="PATH",
                            help="keep the best trial's model (best epoch's weights) as one .keras file")
        parser.add_argument("--tensorboard", metavar="DIR",
                            help="write one TensorBoard run per trial and the HParams summary under DIR")
    parser.add_argument("--plot", metavar="PNG", help="draw the leaderboard and one panel per axis into PNG")


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
        raise GridSpecError('--plot needs matplotlib; install it with pip install "gridspec[plot]"') from None


def _write_insights(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    """The effects section, then where the best model, the logs and the plot went."""
    effects = result.effects()
    if len(effects):
        out.write(str(effects) + "\n")
    if getattr(args, "save_best", None) and result.completed:
        out.write(f"Best model saved to {args.save_best} (trial {result.best.number}, epoch {result.best.best_epoch})\n")
    if getattr(args, "tensorboard", None):
        out.write(f"TensorBoard logs in {args.tensorboard} (tensorboard --logdir {args.tensorboard})\n")
    if getattr(args, "plot", None):
        result.plot(args.plot)
        out.write(f"Plot written to {args.plot}\n")


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    grid = _load_grid(args.target)
    space = grid.space
    out.write(f"{grid.fn.__qualname__}: {space.describe()}\n")
    shown = space.size if args.limit <= 0 else min(space.size, args.limit)
    width = len(str(space.size))
    for index in range(shown):
        out.write(f"{index + 1:>{width}} {space[index]!r}\n")
    if shown < space.size:
        out.write(f"… and {space.size - shown:,} more (--limit 0 lists them all)\n")
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    from gridspec.decorators import accepted_params
    from gridspec.registry import load_module, scan

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
    stored = load(args.path, args.search)
    out.write(stored.report(top=None if args.top <= 0 else args.top) + "\n")
    _write_insights(stored.result(), args, out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = sys.stdout
    try:
        with quiet_native_stderr():
            return int(args.handler(args, out))
    except GridSpecError as exc:
        out.flush()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        out.flush()
        # SearchInterrupted says what finished and how to resume
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        if getattr(args, "storage", None):
            again = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--fresh"]
            print(f"resume with: gridspec {shlex.join(again)}", file=sys.stderr)
        return 130
