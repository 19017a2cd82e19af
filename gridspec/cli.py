"""The ``gridspec`` command: argv -> engine -> terminal. The only module that prints.

User mistakes (``GridSpecError``, an unimportable target, bad arguments) end with a
one-paragraph ``error: ...`` on stderr and exit status 2, never a traceback; a search in
which every trial failed exits 1. TensorFlow's C++ start-up chatter (and the tracebacks it
logs from inside ``tf.data``) is kept off the terminal by pointing file descriptor 2 at
``/dev/null`` (or at ``$GRIDSPEC_TF_LOG``) while Python's own ``sys.stderr`` keeps the
real terminal; its Python-side warnings (``tf.get_logger()``, absl, ``warnings`` raised
inside TensorFlow) go the same way.

Every output path (``--json``, ``--csv``, ``--plot``, ``--save-best``) is checked before
anything trains. Ctrl-C or SIGTERM stops the search (after the trial in progress is recorded,
or at the next epoch end of a group training together, whose trials are then not recorded),
prints the finished trials' leaderboard, writes the requested files (even with no trial
finished) and exits 130 (143 for SIGTERM), also when the last trial finished meanwhile.
Output piped into a reader that quits early (``| head``) ends quietly: a search goes on and
stops writing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TextIO, cast

from gridspec.errors import GridSpecError, LookupFailed, SearchError, SearchInterrupted
from gridspec.flags import FLAG_GROUPS
from gridspec.interrupt import TermAsInterrupt
from gridspec.naming import did_you_mean
from gridspec.settings import SearchSettings
from gridspec.values import display_params

__all__ = ["main"]

PLAN_LIMIT = 100


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, such as 0.5 (got {text!r})")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


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
    groups = {name: run.add_argument_group(name) for name in FLAG_GROUPS}
    output = groups["output"]
    own_outputs = False
    for _, flag in SearchSettings.flags():  # every setting's option, from its field
        if flag.group == "output" and not own_outputs:  # the command's own outputs come first
            own_outputs = True
            output.add_argument("--top", metavar="N", type=int, default=5,
                                help="rows of the final leaderboard (default 5; 0 for all)")
            output.add_argument("--json", metavar="PATH", help="write the result as JSON")
            output.add_argument("--csv", metavar="PATH", help="write one row per trial as CSV")
            output.add_argument("--no-live", action="store_true",
                                help="print one plain line per trial even in a terminal (a pipe always gets them)")
        if flag.switch:
            groups[flag.group].add_argument(flag.flag, action="store_const", const=True, help=flag.help)
        else:
            groups[flag.group].add_argument(flag.flag, metavar=flag.metavar, type=flag.parser or str,
                                            choices=flag.choices, help=flag.help)
    _add_insight_options(output)
    run.set_defaults(handler=cmd_run, command_parser=run)

    plan = commands.add_parser("plan", help="show the combinations of a @grid; trains nothing")
    plan.add_argument("target", metavar="TARGET", help="module:function or path/to/file.py:function")
    plan.add_argument("--limit", type=int, default=PLAN_LIMIT,
                      help=f"list at most N combinations (default {PLAN_LIMIT}; 0 for all)")
    plan.set_defaults(handler=cmd_plan, command_parser=plan)

    listing = commands.add_parser("list", help="the grids and data factories of a module")
    listing.add_argument("module", metavar="MODULE", help="dotted module name or path/to/file.py")
    listing.set_defaults(handler=cmd_list, command_parser=listing)

    show = commands.add_parser("show", help="the leaderboard of a stored search (--storage journal)")
    show.add_argument("path", metavar="PATH", help="a journal written by run --storage PATH")
    show.add_argument("--search", type=_positive_int, metavar="N",
                      help="which search of the file (default: the latest)")
    show.add_argument("--top", metavar="N", type=int, default=10, help="rows of the leaderboard (default 10; 0 for all)")
    show.add_argument("--errors", action="store_true", help="print every failed trial's error in full")
    show.add_argument("--watch", action="store_true",
                      help="follow a running search: refresh as trials are journaled, return when it ends")
    show.add_argument("--interval", type=_positive_float, default=1.0, metavar="SECONDS",
                      help="--watch: seconds between looks at the journal (default 1)")
    _add_insight_options(show)
    show.set_defaults(handler=cmd_show, command_parser=show)
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
        with _quiet_python_warnings():
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        replaced, sys.stderr = sys.stderr, python_stderr
        replaced.close()


_LIBRARIES = ("tensorflow", "absl", "tf_keras")  # whose Python-side warnings are chatter


def _to_native_log(text: str) -> None:
    """Write to file descriptor 2, which ``quiet_native_stderr`` points at the sink."""
    try:
        os.write(2, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass


class _ToNativeLog(logging.Filter):
    """Sends a library logger's records where TensorFlow's C++ output goes, not the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        _to_native_log(f"{record.levelname}:{record.name}:{record.getMessage()}\n")
        return False


@contextlib.contextmanager
def _quiet_python_warnings() -> Iterator[None]:
    """TensorFlow's retracing warnings and the like (``tf.get_logger()``, absl, ``warnings``
    raised inside TensorFlow) go to the sink; warnings about the user's own code stay."""
    try:  # absl's logger must be created by absl itself (an ABSLLogger), so import it first
        import absl.logging  # noqa: F401
    except ImportError:
        pass
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    quiet = _ToNativeLog()
    for logger in loggers:
        logger.addFilter(quiet)
    shown = warnings.showwarning

    def showwarning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        parts = filename.replace("\\", "/").split("/")
        if any(name in parts for name in _LIBRARIES):
            _to_native_log(warnings.formatwarning(message, category, filename, lineno, line))
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        warnings.showwarning = shown
        for logger in loggers:
            logger.removeFilter(quiet)


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


def _flag_of(name: str) -> tuple[str, str | None] | None:
    """How ``gridspec run`` spells setting ``name``: its flag (flags) and metavar, or None."""
    flags = [flag for setting, flag in SearchSettings.flags() if setting == name]
    if not flags:
        return None
    return "/".join(f.flag for f in flags), flags[0].metavar


def cli_message(exc: GridSpecError) -> str:
    """A ``GridSpecError`` in the command line's terms: each setting it names, as its flag."""
    return exc.spelled(_flag_of)


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
def _add_insight_options(parser: Any) -> None:
    """``--plot``, for run and show (``--save-best`` and ``--tensorboard`` are settings)."""
    parser.add_argument("--plot", metavar="PNG", help="draw the leaderboard and one panel per axis into PNG")


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


class _Output(io.TextIOBase):
    """stdout that a reader quitting early (``| head``) doesn't break: the first broken pipe
    points file descriptor 1 at ``/dev/null`` and later writes are dropped, so a search goes
    on to its end (and its journal and files) without a traceback."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:  # type: ignore[override]
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._silence()

    def isatty(self) -> bool:  # the live display asks: a terminal behind the wrapper counts
        return not self.broken and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"

    def _silence(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its usage and a suggestion
        options = [o for action in args.command_parser._actions for o in action.option_strings]
        first = next((u.split("=")[0] for u in unknown if u.startswith("-")), "")
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}{did_you_mean(first, options)}")
    out = cast(TextIO, _Output(sys.stdout))
    term = TermAsInterrupt()
    try:
        with term, quiet_native_stderr():
            code = int(args.handler(args, out))
        out.flush()
        return code
    except GridSpecError as exc:
        out.flush()
        print(f"error: {cli_message(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        out.flush()
        what = "terminated (SIGTERM)" if term.received else "interrupted"
        if isinstance(exc, SearchInterrupted):
            # the engine's message is for Python callers; say the same in CLI terms
            done = str(exc).split(";")[0].removeprefix("search interrupted ")
            storage = getattr(args, "storage", None)
            where = (f"every finished trial is recorded in {storage}" if storage
                     else "pass --storage PATH to make a search resumable")
            print(f"{what}: search stopped {done}; {where}", file=sys.stderr)
        else:
            print(what, file=sys.stderr)
        storage = getattr(args, "storage", None)
        if storage and os.path.exists(storage):
            again = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--fresh"]
            print(f"resume with: gridspec {shlex.join(again)}", file=sys.stderr)
        return 143 if term.received else 130
