"""Shared test fixtures: tiny data and models, so real Keras training stays fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# The suite runs in two processes (README: ``pytest -n 2``), a module at a time each, in
# the order collected. The slowest modules go first, so that the last to start is a short
# one and both processes finish together; the rest keep their order.
SLOWEST_FIRST = ("test_jax_fused.py", "test_jax_group.py", "test_hardening.py", "test_fused_search.py",
                 "test_fused.py", "test_ray.py", "test_journal_search.py", "test_workers.py", "test_cli.py",
                 "test_ctrl_c.py", "test_ray_cluster.py", "test_no_tensorflow.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def batches(seed: int, count: int, size: int = 8, features: int = 4):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(size, features)).astype("float32")
        yield x, np.tanh(x[:, :1]).astype("float32")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell, with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must quieten TensorFlow by itself
    return env


def run_cli(*args: str, cwd: Path | str | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gridspec`` the way a user would, with this checkout importable."""
    env = {**cli_env(), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gridspec", *args],
        cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def start_cli(*args: str, cwd: Path | str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``run_cli`` without waiting, so that a test's independent commands start together."""
    return subprocess.Popen([sys.executable, "-m", "gridspec", *args], cwd=cwd or ROOT,
                            env={**cli_env(), **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_cli(proc: subprocess.Popen[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """What ``run_cli`` returns, for a command ``start_cli`` started."""
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def write_module(tmp_path):
    """Write a user module into a temporary folder; returns its path."""
    counter = iter(range(10_000))

    def write(source: str, name: str | None = None) -> Path:
        path = tmp_path / f"{name or f'usermod_{next(counter)}'}.py"
        path.write_text(source)
        return path

    return write
