"""The precision of matrix products: float32, or bfloat16 or float16 under torch.autocast (float16
on CUDA, its training with a gradient scaler). Training (`trainer.precision`) and search
(`decode.precision`) each choose theirs; this is the one place that maps them to dtypes."""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from nmt.errors import NmtError

log = logging.getLogger(__name__)
_warned: set[str] = set()  # keys already warned about: once a process


AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """bfloat16 or float16 runs the matrix products in that dtype under torch.autocast (the
    weights, their gradients, the softmax and the optimizer stay float32); float32 turns
    autocast off."""
    dtype = AUTOCAST.get(precision, torch.bfloat16)
    return torch.autocast(device.type, dtype=dtype, enabled=precision in AUTOCAST)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """float16 training's loss scaler (its gradients would underflow unscaled); else None."""
    return torch.amp.GradScaler(device.type) if precision == "float16" else None


def product_dtype(x: Tensor) -> torch.dtype:
    """The dtype of x's matrix products: autocast's where it is on for x's device, as torch's
    own linear would take, else x's."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def cpu_has_bfloat16() -> bool:
    """Whether oneDNN finds bfloat16 instructions on this CPU (a private op: False if absent)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision(precision: str, device: torch.device, key: str) -> None:
    """Refuse float16 off CUDA and bfloat16 on a GPU without it; warn where a CPU would emulate
    bfloat16 slowly. `key` is the config key that asked for it, for the message."""
    if precision == "float16" and device.type != "cuda":
        raise NmtError(
            f"{key}=float16: float16 autocast is for CUDA devices; on {device.type} use bfloat16"
        )
    if precision != "bfloat16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise NmtError(f"{key}=bfloat16: {device} does not support bfloat16")
    if device.type == "cpu" and not cpu_has_bfloat16() and key not in _warned:
        _warned.add(key)
        log.warning(
            "%s=bfloat16: this CPU has no bfloat16 instructions (avx512_bf16 or AMX), so "
            "bfloat16 products are emulated, several times slower than float32",
            key,
        )


def resolve_device(name: str) -> torch.device:
    """`device=`: auto (CUDA where there is one), cpu, or cuda[:N] where it exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NmtError(f"device={name}: no CUDA device is available (use device=cpu or auto)")
    return torch.device(name)
