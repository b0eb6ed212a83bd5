"""The LSTM cell's pointwise part, after the gate products: torch.lstm_cell's arithmetic, shared
by the hand-written cells (the decoder's under autocast, the packed one of decoding, the
encoder's `lstm_steps`)."""

from __future__ import annotations

import torch
from torch import Tensor


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Gates [i; f; g; o] (..., 4H) and the cell state c (..., H) -> h', c' (..., H)."""
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c
