"""Cache entries that check themselves: each file of the tokenizer and encoding caches has a
SHA-256 digest of its content beside it (`NAME.sha256`), written after the file and checked
before it is used. An entry that does not match its digest, or that fails to load, is deleted
with a log line naming it and built again; nothing is trained on a cache entry that changed
after it was written.

An entry without a digest (written before the caches had them) is given one once it loads.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from nmt.files import write_text

log = logging.getLogger(__name__)

T = TypeVar("T")


def digest_path(path: Path) -> Path:
    """The file beside a cache entry that holds its SHA-256."""
    return path.with_name(path.name + ".sha256")


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal(path: Path) -> None:
    """Write the digest of the cache entry `path` beside it."""
    write_text(digest_path(path), file_digest(path) + "\n")


def drop(path: Path, why: str) -> None:
    """Delete a bad cache entry and its digest, with a log line naming it."""
    log.warning("cache: %s %s; rebuilding it", path, why)
    path.unlink(missing_ok=True)
    digest_path(path).unlink(missing_ok=True)


def checked(path: Path, load: Callable[[Path], T]) -> T | None:
    """`load(path)` of a cache entry whose content matches its digest; None, the entry gone, if
    there is none, it does not match, or loading it fails (a log line says which)."""
    if not path.is_file():
        digest_path(path).unlink(missing_ok=True)
        return None
    sealed = digest_path(path)
    try:
        expected = sealed.read_text(encoding="utf-8").strip() if sealed.is_file() else None
        if expected is not None and file_digest(path) != expected:
            drop(path, "does not match its digest")
            return None
        value = load(path)
    except Exception as err:  # anything a damaged file makes a loader raise
        drop(path, f"does not load ({type(err).__name__}: {err})")
        return None
    if expected is None:
        seal(path)
    return value
