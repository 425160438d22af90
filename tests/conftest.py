"""Shared test setup: no hub access, and helpers for running the real command line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Nothing in the suite may reach a model or data hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run_command(args: list[str], cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run a command with the repository on PYTHONPATH; return the CompletedProcess (output captured)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    return subprocess.run(args, cwd=cwd or REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def run_command():
    """Run a command with the repository on PYTHONPATH; return the CompletedProcess (output captured)."""
    return _run_command
