"""What every command shares: the error wrapper that turns NmtError into one line on stderr."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from nmt.errors import NmtError


def cli(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Turn NmtError into a one-line message on stderr and its exit status (2; 128 + the
    signal for an interrupted run), with no traceback."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except NmtError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)

    return wrapper
