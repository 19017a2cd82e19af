"""The exception tree: every error gridspec raises on purpose.

Owns nothing but the classes. Each class also subclasses the builtin a Python user would
reach for first, so ``except ValueError`` keeps working around gridspec calls::

    GridSpecError(ValueError)                  root; exit code 2 in the CLI
    ├── GridError(GridSpecError, TypeError)    an invalid @grid or model function
    ├── LookupFailed(GridSpecError, LookupError)
    │                                          a target, module or data factory not found
    ├── DataError(GridSpecError)               a factory produced unusable batches
    ├── JournalError(GridSpecError)            a storage file that can't be used
    ├── MissingExtra(GridSpecError, ImportError)
    │                                          an optional package is not installed
    └── SearchError(GridSpecError)             no trial completed, or max_failures
                                               consecutive failures; exit code 1

    SearchInterrupted(KeyboardInterrupt)       Ctrl-C: carries the finished trials

Only the CLI catches them: it prints ``error: <message>`` and exits with ``exit_code``.
An error about a setting says which (``setting``), and a message names settings through
``Named`` parts, so that Python reads ``strategy='halving'`` where the command line reads
``--strategy halving``, each spelling whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "install_hint",
    "Named",
    "require_extra",
    "require_extras",
    "DataError",
    "GridError",
    "GridSpecError",
    "JournalError",
    "LookupFailed",
    "MissingExtra",
    "SearchError",
    "SearchInterrupted",
]


_BARE = object()  # a setting named without a value


class Named:
    """A setting named in a message: as Python writes it (``name``, ``name=value``, or the
    ``python`` text given) and, on the command line, as its flag (``text(flag, metavar)``).
    ``one_of``: ``value`` is a tuple of alternatives (``strategy='halving', 'asha' or
    'hyperband'``). A ``placeholder`` value stands for what the user fills in
    (``steps_per_epoch=N``), which the command line writes as the flag's metavar. ``python``
    and ``cli`` give either reading outright."""

    __slots__ = ("name", "value", "python", "cli", "placeholder", "one_of")

    def __init__(self, name: str, value: Any = _BARE, *, python: str | None = None, cli: str | None = None,
                 placeholder: bool = False, one_of: bool = False) -> None:
        self.name = name
        self.value = value
        self.python = python
        self.cli = cli
        self.placeholder = placeholder
        self.one_of = one_of

    def __reduce__(self) -> Any:  # travels from worker processes inside its error
        bare = self.value is _BARE
        return (_named, (self.name, None if bare else self.value, bare, self.python, self.cli,
                         self.placeholder, self.one_of))

    def __str__(self) -> str:
        if self.python is not None:
            return self.python
        if self.value is _BARE:
            return self.name
        if self.placeholder:
            return f"{self.name}={self.value}"
        return f"{self.name}={self._shown(repr)}"

    def text(self, flag: str, metavar: str | None) -> str:
        """This part on the command line, where the setting is ``flag``."""
        if self.cli is not None:
            return self.cli
        if self.value is _BARE:
            return flag
        if self.placeholder:
            return f"{flag} {metavar or self.value}"
        if self.value is None:
            return f"no {flag}"
        return f"{flag} {self._shown(str)}"

    def _shown(self, show: Callable[[Any], str]) -> str:
        if not self.one_of:
            return show(self.value)
        shown = [show(v) for v in self.value]
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _named(name: str, value: Any, bare: bool, python: str | None, cli: str | None, placeholder: bool,
           one_of: bool) -> Named:
    return Named(name, _BARE if bare else value, python=python, cli=cli, placeholder=placeholder, one_of=one_of)


class GridSpecError(ValueError):
    """A mistake in how gridspec was used; the message says what would be valid.

    Built from text and ``Named`` parts (``str(error)`` is the Python reading); ``setting``
    is the setting of ``search()`` the mistake is about, if any."""

    exit_code: int = 2

    def __init__(self, *parts: Any, setting: str | None = None) -> None:
        super().__init__(*parts)
        self.setting = setting

    def __str__(self) -> str:
        return "".join(map(str, self.args))

    def spelled(self, flag_of: Callable[[str], tuple[str, str | None] | None]) -> str:
        """The message with each named setting as ``flag_of(name)`` spells it: ``(flag,
        metavar)``, or None for a setting the reader spells as Python does."""
        out = []
        for part in self.args:
            spelling = flag_of(part.name) if isinstance(part, Named) else None
            out.append(part.text(*spelling) if isinstance(part, Named) and spelling else str(part))
        return "".join(out)


class GridError(GridSpecError, TypeError):
    """An invalid grid declaration or model function, found as early as possible."""


class LookupFailed(GridSpecError, LookupError):
    """A target, module, grid or data factory that could not be found."""


class DataError(GridSpecError):
    """A data factory's output that can't be turned into training batches."""


class JournalError(GridSpecError):
    """A storage file that is not usable for this search."""


class MissingExtra(GridSpecError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra."""


def install_hint(extras: list[str]) -> str:
    """How to install extras: from the package index, and in a source checkout (a clone)."""
    names = ",".join(extras)
    return f'pip install "gridspec[{names}]" (in a source checkout: pip install -e ".[{names}]")'


def require_extra(module: str, extra: str, feature: str, package: str | None = None) -> Any:
    """Import ``module`` for ``feature``, or raise ``MissingExtra`` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f'{feature} needs {package or module.split(".")[0]}; install it with {install_hint([extra])}'
        ) from None


def require_extras(needs: list[tuple[str, str, str, str]]) -> None:
    """Check at once every extra a run needs — ``(module, extra, feature, package)`` each — and
    raise one ``MissingExtra`` naming all that are missing, rather than one per attempt."""
    import importlib

    missing = []
    for module, extra, feature, package in needs:
        try:  # the top package first: a submodule imported earlier stays in sys.modules
            for name in (module.partition(".")[0], module):
                importlib.import_module(name)
        except ImportError:
            missing.append((package, extra, feature))
    if not missing:
        return
    said = " and ".join(f"{feature} needs {package}" for package, _, feature in missing)
    them = "it" if len(missing) == 1 else "them"
    raise MissingExtra(f"{said}; install {them} with {install_hint([extra for _, extra, _ in missing])}")


class SearchError(GridSpecError):
    """No trial of the search completed, or the search stopped after ``max_failures``
    consecutive failures. ``first_error`` is the first failure's text; ``result`` (when
    set) holds the trials that did finish."""

    exit_code = 1

    def __init__(self, message: str, first_error: str | None = None, result: Any = None) -> None:
        super().__init__(message)
        self.first_error = first_error
        self.result = result


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the search; ``result`` holds the trials that finished (and were
    recorded in the journal, with ``storage=``). A ``KeyboardInterrupt``, so a script stops."""

    exit_code = 130

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result
