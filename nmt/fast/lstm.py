"""The LSTM cell's pointwise part, after the gate products: torch.lstm_cell's arithmetic, shared
by the fast layer's hand-written cells."""

from __future__ import annotations

import torch
from torch import Tensor


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Gates [i; f; g; o] (..., 4H) and the cell state c (..., H) -> h', c' (..., H):
    torch.lstm_cell's arithmetic after the gate products."""
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c
