"""The package type-checks: mypy runs on it in CI, with the settings in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_mypy_is_clean_on_the_package():
    proc = subprocess.run([sys.executable, "-m", "mypy", "gridspec"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
