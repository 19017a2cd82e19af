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
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "install_hint",
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


class GridSpecError(ValueError):
    """A mistake in how gridspec was used; the message says what would be valid."""

    exit_code: int = 2


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
        try:
            importlib.import_module(module)
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
