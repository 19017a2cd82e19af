"""The ``gridspec`` command: argv -> engine -> terminal. With the displays, the only code that prints.

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

import os
import shlex
import sys
from collections.abc import Sequence
from typing import TextIO, cast

from gridspec.cli.commands import settings_from_flags
from gridspec.cli.parser import build_parser, cli_message
from gridspec.cli.terminal import _Output, quiet_native_stderr
from gridspec.errors import GridSpecError, SearchInterrupted
from gridspec.interrupt import TermAsInterrupt
from gridspec.naming import did_you_mean

__all__ = ["main", "build_parser", "cli_message", "settings_from_flags"]


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
