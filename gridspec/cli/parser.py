"""``gridspec``'s argument parser: ``run``'s setting options come from the settings' fields
(their ``Flag``s), and an error names each setting it is about as its flag."""

from __future__ import annotations

import argparse
from typing import Any

from gridspec.cli.commands import cmd_list, cmd_plan, cmd_run, cmd_show
from gridspec.errors import GridSpecError
from gridspec.flags import FLAG_GROUPS
from gridspec.settings import SearchSettings

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


def _add_insight_options(parser: Any) -> None:
    """``--plot``, for run and show (``--save-best`` and ``--tensorboard`` are settings)."""
    parser.add_argument("--plot", metavar="PNG", help="draw the leaderboard and one panel per axis into PNG")


def _flag_of(name: str) -> tuple[str, str | None] | None:
    """How ``gridspec run`` spells setting ``name``: its flag (flags) and metavar, or None."""
    flags = [flag for setting, flag in SearchSettings.flags() if setting == name]
    if not flags:
        return None
    return "/".join(f.flag for f in flags), flags[0].metavar


def cli_message(exc: GridSpecError) -> str:
    """A ``GridSpecError`` in the command line's terms: each setting it names, as its flag."""
    return exc.spelled(_flag_of)

