"""Files a run keeps: written atomically, and JSON that stays JSON (a NaN or infinity, not
valid JSON, is written as null)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from nmt.errors import NmtError


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Make `path` with `write(file)` through a temporary file beside it, flushed to disk and
    renamed over it: a reader (or a run killed meanwhile) sees the old file or the new one,
    never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def finite(value: Any) -> Any:
    """`value` with every non-finite float, at any depth of dicts and lists, replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps of `finite(value)`; anything else that is not JSON is an error."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def inside(path: Path, folder: Path, what: str) -> Path:
    """`path`, refused (one line naming `what`) unless it stays inside `folder` with no
    symbolic link on the way: a name read from a file (a record's, a paper's) must not reach
    anything outside the folder it names things in."""
    try:
        relative = path.absolute().relative_to(folder.absolute())
    except ValueError:
        raise NmtError(f"{what}: {path} lies outside {folder}; refused") from None
    if ".." in relative.parts:
        raise NmtError(f"{what}: {path} climbs out of {folder}; refused")
    step = folder
    for part in relative.parts:
        step = step / part
        if step.is_symlink():
            raise NmtError(f"{what}: {step} is a symbolic link; refused")
    return path
