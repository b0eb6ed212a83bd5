"""Self-describing checkpoints, written atomically and loaded without unpickling code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from nmt.errors import NmtError

FORMAT = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` via a temporary file and an atomic rename, so an interrupted
    write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp*"):  # a killed writer's; the run is locked
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True` (no arbitrary code from the file)."""
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise NmtError(f"checkpoint {path}: not a readable nmt checkpoint ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise NmtError(f"checkpoint {path}: not an nmt checkpoint of format {FORMAT}")
    return payload
