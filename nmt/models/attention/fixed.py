"""No attention: the fixed context of an encoder-decoder."""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.errors import NmtError
from nmt.models.attention.interface import Attention, as_sequence, finish


class NoAttention(Attention):
    """No attention: the fixed context of an encoder-decoder (Cho et al. 2014; Bahdanau et al.
    2014's RNNencdec), the encoder's last state of its reading in each direction, so that it
    summarises the whole source whatever the reading order. No parameters.

    The memory comes back in source order, so where a reading ends depends on it: a forward
    reading ends at the last real position and a backward one at position 0, and a reversed
    encoder (Luong's "+reverse") swaps the two. A bidirectional encoder's context is its forward
    half where the forward reading ends and its backward half where the backward one ends. The
    weights (for heatmaps and entropy only) are one-hot where the forward reading ends.

    Args:
        query_size, key_size: the interface's sizes (unused).
        directions: the encoder's directions (2: bidirectional, each half of Dk one of them).
        reverse: whether the encoder reads the source backwards.
        nmt.models.build passes the encoder's own `directions` and `reverse`.
    """

    def __init__(
        self, *, query_size: int, key_size: int, directions: int = 1, reverse: bool = False
    ) -> None:
        super().__init__()
        if directions not in (1, 2) or key_size % directions:
            raise NmtError(f"model.attention: {directions} directions do not split Dk {key_size}")
        self.directions, self.reverse = directions, reverse

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        B, T, S = query.size(0), query.size(1), memory.size(1)
        rows = torch.arange(B, device=memory.device)
        last = mask.sum(-1) - 1  # (B,) the last real position
        first = torch.zeros_like(last)
        forward_end, backward_end = (first, last) if self.reverse else (last, first)
        context = memory[rows, forward_end]  # (B, Dk)
        if self.directions == 2:
            half = memory.size(-1) // 2
            context = torch.cat([context[:, :half], memory[rows, backward_end, half:]], dim=-1)
        weights = torch.zeros(B, S, dtype=memory.dtype, device=memory.device)
        weights[rows, forward_end] = 1.0
        weights = weights.unsqueeze(1).expand(B, T, S)  # (B, T, S)
        return finish(context.unsqueeze(1).expand(B, T, -1), weights, single)
