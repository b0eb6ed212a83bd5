"""Additive attention, Bahdanau et al. 2014."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.models.attention.interface import (
    Attention,
    as_sequence,
    finish,
    masked_softmax,
    weighted_sum,
)


class BahdanauAttention(Attention):
    """Additive attention, Bahdanau et al. 2014, eq. (6) and A.1.2:

        e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)
        alpha_i = softmax_j(e_ij),  c_i = sum_j alpha_ij h_j

    U_a h_j does not depend on i, so `project_keys` computes it once per batch.

    Args:
        query_size: Dq, the decoder state size n.
        key_size: Dk, the annotation size 2n.
        hidden_size: n', the alignment model's hidden size (default: query_size).
    """

    def __init__(self, *, query_size: int, key_size: int, hidden_size: int | None = None) -> None:
        super().__init__()
        hidden_size = hidden_size or query_size
        self.W_a = nn.Linear(query_size, hidden_size, bias=False)
        self.U_a = nn.Linear(key_size, hidden_size)
        self.v_a = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> U_a h: (B, S, n')."""
        return self.U_a(memory)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        hidden = torch.tanh(self.W_a(query).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, n')
        scores = self.v_a(hidden).squeeze(-1)  # (B, T, S)
        weights = masked_softmax(scores, mask)
        return finish(weighted_sum(weights, memory), weights, single)
