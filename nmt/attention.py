"""Attention variants behind one interface (DESIGN.md):

    keys = attn.project_keys(memory)                      # pure; the decoder keeps it as a local
    context, weights = attn(query, keys, memory, mask, step=t)

query (B, Dq) at one step, or (B, T, Dq) for a whole sequence; memory (B, S, Dk) encoder states in
source order; mask (B, S) bool, True at real tokens; context (B, Dk) or (B, T, Dk); weights (B, S)
or (B, T, S), >= 0, exactly 0 at padding, summing to 1 over real positions.

Each variant is one small stateless module; the shared maths are the free functions below.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def as_sequence(query: Tensor) -> tuple[Tensor, bool]:
    """(B, Dq) -> (B, 1, Dq); (B, T, Dq) unchanged. Also says whether it was a single step."""
    return (query.unsqueeze(1), True) if query.dim() == 2 else (query, False)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with exact zeros where `mask` is False.

    Args:
        scores: (B, T, S) logits.
        mask: (B, S) bool, True at real positions (every row has at least one).
    """
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # (B, T, S)
    return torch.softmax(scores, dim=-1)


def weighted_sum(weights: Tensor, memory: Tensor) -> Tensor:
    """(B, T, S) weights x (B, S, Dk) memory -> (B, T, Dk) contexts."""
    return torch.bmm(weights, memory)


def finish(context: Tensor, weights: Tensor, single_step: bool) -> tuple[Tensor, Tensor]:
    if single_step:
        return context.squeeze(1), weights.squeeze(1)
    return context, weights


class NoAttention(nn.Module):
    """No attention: the fixed context of an encoder-decoder (Cho et al. 2014; Bahdanau 2014's
    RNNencdec fixes c_i to the last encoder state). Weights are one-hot on the last real source
    position and the context is the memory there; no parameters."""

    def __init__(self, *, query_size: int, key_size: int) -> None:
        super().__init__()

    def project_keys(self, memory: Tensor) -> Tensor:
        return memory

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        B, T, S = query.size(0), query.size(1), memory.size(1)
        last = mask.sum(-1) - 1  # (B,) index of the last real position
        weights = torch.zeros(B, S, dtype=memory.dtype, device=memory.device)
        weights[torch.arange(B, device=memory.device), last] = 1.0
        weights = weights.unsqueeze(1).expand(B, T, S)  # (B, T, S)
        return finish(weighted_sum(weights, memory), weights, single)


class BahdanauAttention(nn.Module):
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
