"""Shared helpers: tiny configs and a runner for the console scripts (as subprocesses, exactly as
a user calls them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# A model and task small enough to train in seconds.
TINY = [
    "data=toy_reverse",
    "data.corpus.n_train=400",
    "data.corpus.n_dev=40",
    "data.corpus.n_test=40",
    "tokenizer.vocab_size=30",
    "model.emb_size=16",
    "model.hidden_size=16",
    "trainer.batch_size=16",
    "trainer.max_steps=12",
    "trainer.valid_every=6",
    "trainer.num_threads=1",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenizer/Arrow cache for the whole session, away from the checkout's data/."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def run_cli(cache_dir: Path):
    """run_cli("train", *overrides, cwd=...) -> CompletedProcess of `python -m nmt.<name>`."""

    def run(
        name: str, *args: str, cwd: Path | None = None, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", f"nmt.{name}", *args],
            cwd=cwd,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"nmt.{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    return run
