"""Self-describing checkpoints, written atomically and loaded without unpickling code."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nmt.errors import NmtError
from nmt.files import atomic_write
from nmt.trust import check_config

FORMAT = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` via a temporary file and an atomic rename, so an interrupted
    write leaves the previous checkpoint intact."""
    for stale in path.parent.glob(f".{path.name}.tmp*"):  # a killed writer's; the run is locked
        stale.unlink(missing_ok=True)
    try:
        atomic_write(path, lambda f: torch.save({"format": FORMAT, **payload}, f))
    except (OSError, RuntimeError) as err:  # torch reports a full disk as "unexpected pos"
        raise NmtError(f"checkpoint {path}: cannot write it ({write_failure(err, path)})") from None


def write_failure(err: Exception, path: Path) -> str:
    """What went wrong in words: the OS's reason, or a full disk that torch hides."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    free = shutil.disk_usage(path.parent).free
    if free < 64 * 2**20:
        return f"no space left on device: {free // 2**20} MiB free"
    return str(err).splitlines()[0]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True` (no arbitrary code from the file)."""
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line error
        # torch's message goes on to advise weights_only=False: wrong for a file one distrusts
        reason = str(err).splitlines()[0].strip() if str(err).strip() else type(err).__name__
        if "Weights only load failed" in reason:
            reason = "it holds objects other than tensors and plain data, which are never loaded"
        raise NmtError(f"checkpoint {path}: not a readable nmt checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise NmtError(f"checkpoint {path}: not an nmt checkpoint of format {FORMAT}")
    return payload


def checked_config(payload: dict[str, Any], path: str | Path, allow: Sequence[str] = ()) -> dict:
    """The config a loaded checkpoint holds, refused (one line naming the checkpoint, the key and
    the target) if it would build anything outside nmt's own classes and the `allow`ed modules
    (nmt.trust): call it before building anything from the checkpoint."""
    config = payload.get("config")
    if not isinstance(config, dict):
        raise NmtError(f"checkpoint {path}: holds no config to rebuild its model from")
    check_config(config, f"checkpoint {path}", allow)
    return config


def load_weights(model: torch.nn.Module, state: dict, source: str) -> None:
    """`model.load_state_dict(state)`, a mismatch one error naming `source` and the first
    offending parameter."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or str(err).splitlines()[:1]
        raise NmtError(
            f"{source}: its weights do not fit the model its config describes "
            f"({first[0].strip() if first else 'state_dict mismatch'})"
        ) from None


def rng_state() -> dict[str, Any]:
    """Every random stream a resume must restore: torch's, Python's and CUDA's (where there
    is one)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the streams `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
