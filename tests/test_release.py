"""One version everywhere: the package metadata, ``gridspec.__version__``, ``gridspec --version``
and the CHANGELOG's latest release, so a release never ships saying another number."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import gridspec
from gridspec.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_metadata_and_the_module_say_the_same_version():
    metadata = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert metadata["project"]["version"] == gridspec.__version__ == "0.2.0"


def test_gridspec_version_prints_it(capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"gridspec {gridspec.__version__}"


def test_the_changelog_dates_the_release_below_an_unreleased_section():
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert headings[0] == "Unreleased"
    released = [h for h in headings[1:] if re.fullmatch(r"\d+\.\d+\.\d+ — \d{4}-\d{2}-\d{2}", h)]
    assert released and released[0].split(" — ")[0] == gridspec.__version__
    assert headings[1] == released[0]  # nothing undated between Unreleased and the release
