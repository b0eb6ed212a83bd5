"""Fixtures: one cache for the session, a runner for the console scripts (as subprocesses,
exactly as a user calls them), and the toy model several tests share, learned once by nmt-train."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toys import LEARN, train_toy


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenizer/Arrow cache for the whole session, away from the checkout's data/."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def run_cli(cache_dir: Path):
    """run_cli("train", *overrides, cwd=...) -> CompletedProcess of `python -m nmt.<name>`, or
    with script=True of the console script `nmt-<name>` on PATH (skipped where not installed)."""

    def run(
        name: str,
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        check: bool = True,
        script: bool = False,
        timeout: int = 600,
    ) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", f"nmt.{name}"]
        if script:
            exe = shutil.which(f"nmt-{name}")
            if exe is None:
                pytest.skip(f"nmt-{name} is not installed on PATH")
            command = [exe]
        env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(
            [*command, *args],
            cwd=cwd,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{command[-1]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def learned_run(tmp_path_factory, cache_dir):
    """A toy model trained well enough to have a real BLEU (shared by several tests)."""
    run_dir = tmp_path_factory.mktemp("learned")
    return run_dir, train_toy(run_dir, cache_dir, *LEARN)
