"""Keeping the terminal readable: TensorFlow's C++ start-up chatter (and the tracebacks it
logs from inside ``tf.data``) is kept off it by pointing file descriptor 2 at ``/dev/null``
(or at ``$GRIDSPEC_TF_LOG``) while Python's own ``sys.stderr`` keeps the real terminal; its
Python-side warnings (``tf.get_logger()``, absl, ``warnings`` raised inside TensorFlow) go
the same way. Output piped into a reader that quits early (``| head``) ends quietly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO


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
