"""Files a run keeps: written atomically, JSON that stays JSON (a NaN or infinity, not valid
JSON, is written as null), and JSON-lines logs whose last line a kill may have cut short."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from nmt.errors import NmtError

log = logging.getLogger(__name__)


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


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file the project appends to (metrics.jsonl, jobs.jsonl, a
    record's sittings.jsonl), [] if there is none. A last line cut short (a kill or a full disk
    during its append) is dropped with a warning; a bad line before it is an error naming the
    file and line."""
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if number == len(lines):  # no newline after it: its append did not finish
                log.warning("%s: its last line is cut short (%s); dropped", path, err)
                break
            raise NmtError(f"{path}:{number}: not valid JSON ({err})") from None
        if not isinstance(record, dict):
            raise NmtError(f"{path}:{number}: not a JSON object")
        records.append(finite(record))
    return records


def append_jsonl(path: Path, record: dict) -> None:
    """Append `record` as one line of `path`, first cutting off a last line whose own append
    did not finish (`read_jsonl` drops it too), so that it cannot spoil this one."""
    line = (dumps(record) + "\n").encode("utf-8")
    with open(path, "ab+") as f:
        f.seek(0)
        text = f.read()
        if text and not text.endswith(b"\n"):
            keep = text.rfind(b"\n") + 1
            log.warning("%s: its last line is cut short; dropped", path)
            f.truncate(keep)
        f.write(line)


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
