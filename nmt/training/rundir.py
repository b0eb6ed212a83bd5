"""A run directory belongs to one run: a fresh launch into one that holds a run is refused, and
so is a second process on a live one (a lock the kernel drops with its process, so a killed run
leaves none behind)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nmt.errors import NmtError

LOCK = ".lock"


@contextmanager
def exclusive(directory: Path, what: str) -> Iterator[None]:
    """Hold DIRECTORY/.lock while the block runs; refuse if another process holds it.

    Args:
        directory: the directory to lock (created if missing).
        what: what the error puts before the directory, e.g. "run directory " or "out=".
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise NmtError(f"{what}{directory}: in use by another process (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def check_fresh(run_dir: Path, output_subdir: str | None) -> None:
    """Refuse a fresh launch (rank 0) into a directory that holds another run's saved config:
    `output_subdir`, the launch's `hydra.output_subdir`, is null there (nmt.resolvers), and
    Hydra wrote nothing into it."""
    if output_subdir is None:
        raise NmtError(
            f"hydra.run.dir={run_dir}: holds a run already; continue it with resume={run_dir} "
            "or choose another directory"
        )


def holds_run(directory: Path | None) -> bool:
    """Whether `directory` holds a run (its saved config): a refused `resume=` of it, live or
    not, must leave every file there as it was."""
    return directory is not None and (directory / ".hydra" / "config.yaml").is_file()


# What a launch writes before training starts (Hydra's config, the log, the lock).
EARLY_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", LOCK)


def discard_failed(run_dir: Path, log_name: str) -> None:
    """After a launch failed before training began (no checkpoints, no TensorBoard events):
    remove what it wrote, then the directory if that left it empty. Only those files go, so a
    directory the user named that held anything else keeps it; a run that began training keeps
    its log."""
    if (run_dir / "checkpoints").exists() or (run_dir / "tensorboard").exists():
        return
    for name in (*EARLY_FILES, log_name):
        (run_dir / name).unlink(missing_ok=True)
    for directory in (run_dir / ".hydra", run_dir):
        with contextlib.suppress(OSError):  # not empty, or not there: keep it
            directory.rmdir()
