"""How ``gridspec run`` takes a setting: the ``Flag`` record a ``SearchSettings`` field
carries in its metadata, and the parsers that turn an option's text into a value.

Parsers only convert; every check is the field's own validator, run once, in Python and on
the command line alike. Plain data: imports only ``errors``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

from gridspec.errors import GridSpecError

__all__ = ["FLAG_GROUPS", "Flag", "gpu_list", "integer", "integer_or_text", "number", "train_name", "val_name"]

FLAG_GROUPS = ("what to train", "how to search", "where trials run", "storage", "output")


@attrs.frozen
class Flag:
    """One option of ``gridspec run`` for a setting: ``flag METAVAR`` under ``group`` in
    ``run --help``, with its ``help`` line. ``parser`` (argparse's ``type``) turns the text
    into a value and ``to_setting`` that value into the setting's (validation is the
    field's own, once). ``switch``: a flag without a value. ``key``: the flag fills one entry
    of a dict setting (``--trial-cpus`` is ``trial_resources["num_cpus"]``)."""

    flag: str
    help: str
    group: str
    metavar: str | None = None
    parser: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False
    to_setting: Callable[[Any], Any] | None = None
    key: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None


def integer_or_text(text: str) -> int | str:
    """``--fuse``: a group size, or a word the field's validator judges (``auto``)."""
    try:
        return int(text)
    except ValueError:
        return text


def gpu_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be GPU indices separated by commas, such as 0,1 (got {text!r})") from None


def train_name(text: str) -> str:
    if text.lower() == "none":
        raise GridSpecError("--train none: a search needs training data; name a @train_data factory "
                            "(gridspec list MODULE shows them) or leave --train out", setting="train")
    return text


def val_name(text: str) -> str | None:
    return None if text.lower() == "none" else text  # --val none: no validation data
