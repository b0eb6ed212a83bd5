"""What every command shares: the error wrapper that turns the errors a user can fix (bad
input, a config value that does not resolve, a disk that is full or read-only) into one line on
stderr."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt.config import CONFIG_DIR
from nmt.errors import NmtError

# OSErrors about the file system rather than the code: reported as one line naming the file
DISK_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT)


def one_line(err: BaseException) -> str | None:
    """The message of an error a user can fix, or None for a bug (which keeps its traceback)."""
    if isinstance(err, NmtError):
        return str(err)
    if isinstance(err, OmegaConfBaseException):
        key = getattr(err, "full_key", None)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return f"{key}: {reason}" if key else f"config: {reason}"
    if isinstance(err, OSError) and err.errno in DISK_ERRORS:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    return None


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors of `one_line` into one line on stderr and a non-zero exit status (2 for
    bad input; 128 + the signal for an interrupted run; 1 for a disk that refused a write),
    with no traceback; any other error propagates."""
    try:
        yield
    except (NmtError, OmegaConfBaseException, OSError) as err:
        message = one_line(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 1 if isinstance(err, OSError) else 2))


def require(cfg: DictConfig, key: str, form: str) -> None:
    """Refuse a command line without `key` (a `???` in the command's config): one line with
    the form it takes."""
    if OmegaConf.is_missing(cfg, key):
        raise NmtError(f"{form} is required")


def cli(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """A Hydra task whose user errors are one line (`user_errors`)."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        with user_errors():
            return task(cfg)

    return wrapper


def search_roots(arguments: Sequence[str]) -> list[Path] | None:
    """The config folders a command line composes from: nmt's, and the `file://` folders of a
    `hydra.searchpath=[...]`; None where it names another kind (a package), which this check
    cannot list."""
    roots = [Path(CONFIG_DIR)]
    for argument in arguments:
        key, _, value = argument.lstrip("+").partition("=")
        if key != "hydra.searchpath":
            continue
        for entry in value.strip("[]").split(","):
            entry = entry.strip().strip("'\"")
            if not entry.startswith("file://"):
                return None
            roots.append(Path(entry.removeprefix("file://")))
    return roots


def unknown_choice(arguments: Sequence[str]) -> str | None:
    """What is wrong with the first `GROUP=OPTION` argument (a config group of the command's
    config folders, options comma-separated as in a sweep) whose option has no file, naming the
    group's options; None if every such argument names one. Hydra would refuse it too, over
    several lines."""
    roots = search_roots(arguments)
    if roots is None:
        return None
    for argument in arguments:
        key, sep, value = argument.lstrip("+").partition("=")
        if not sep or argument.startswith(("-", "~")) or key.startswith("hydra/"):
            continue  # flags, deletions, and Hydra's own groups (its plugins add options)
        groups = [root / key for root in roots if (root / key).is_dir()]
        if not groups:
            continue
        for option in value.split(","):
            if option == "null" or any(c in option for c in "$*?()[]{}"):  # sweeps, interpolations
                continue
            if not any((group / f"{option}.yaml").is_file() for group in groups):
                options = sorted({p.stem for group in groups for p in group.glob("*.yaml")})
                return f"{key}={option}: no such option; {key} is one of {', '.join(options)}"
    return None


def hydra_message(err: HydraException) -> str:
    """Hydra's message on one line: its lines up to the config search path, joined."""
    text = str(err).split("Config search path:")[0]
    return " ".join(text.split()) or type(err).__name__


def entry_point(hydra_main: Callable[[], Any]) -> Callable[[], Any]:
    """A console script around a Hydra main: the command line's group choices checked first
    (`unknown_choice`), and what goes wrong while Hydra sets the run up (a full disk under its
    run directory, an override it cannot apply) as one line, as `cli` does inside the task.
    Hydra is asked to raise rather than print (HYDRA_FULL_ERROR), so a bug keeps its whole
    traceback."""

    @functools.wraps(hydra_main)
    def main() -> Any:
        message = unknown_choice(sys.argv[1:])
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")
        with user_errors():
            try:
                return hydra_main()
            except HydraException as err:
                print(f"error: {hydra_message(err)}", file=sys.stderr)
                sys.exit(2)

    return main
