"""Every example's documented command runs as written (its docstring's "Run it with:" line).

The commands run side by side, as a user's would in three terminals: most of each one's time
is starting TensorFlow and tracing, not training.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys

from conftest import ROOT, cli_env

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
COMMAND = re.compile(r"^Run it with:\s+(gridspec .+)$", re.MULTILINE)


def _command(path) -> list[str]:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    found = COMMAND.findall(docstring)
    assert len(found) == 1, f"{path.name}: its docstring must say 'Run it with:  gridspec ...' once"
    return shlex.split(found[0])


def test_every_example_documents_a_command():
    assert EXAMPLES and all(_command(p)[:2] == ["gridspec", "run"] for p in EXAMPLES)


def test_every_documented_command_runs():
    commands = {p.name: _command(p) for p in EXAMPLES}
    running = {name: subprocess.Popen([sys.executable, "-m", "gridspec", *args[1:]], cwd=ROOT, env=cli_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, args in commands.items()}
    failed = []
    for name, proc in running.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or "Best params found: {" not in out:
            failed.append(f"{shlex.join(commands[name])} (exit {proc.returncode}):\n{err or out}")
    assert not failed, "\n".join(failed)
