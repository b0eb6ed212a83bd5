"""Luong et al. 2015's global attention, with any score, and its location-based variant."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from nmt.models.attention.interface import (
    Attention,
    ScoredAttention,
    as_sequence,
    finish,
    masked_softmax,
    weighted_sum,
)
from nmt.models.attention.scores import ScoreFactory, build_score


class GlobalAttention(ScoredAttention):
    """Luong et al. 2015, global attention, eq. (7)-(8): a_t = softmax_s(score(h_t, h_s)) over
    every source position, c_t = sum_s a_t(s) h_s.

    Args:
        score: the score's factory (nmt.models.attention.scores); the parameters live on the
            `score` child.
    """

    def __init__(self, *, query_size: int, key_size: int, score: ScoreFactory) -> None:
        super().__init__()
        self.score = build_score(score, query_size, key_size)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        weights = masked_softmax(self.score(query, keys), mask)  # (B, T, S)
        return finish(weighted_sum(weights, memory), weights, single)


class LocationAttention(Attention):
    """Luong et al. 2015, location-based attention, eq. (8): a_t = softmax(W_a h_t), logits over a
    fixed maximum length `max_len`, cut to the batch's S and masked; positions past max_len get
    weight 0 (footnote 6: words near the end of long sentences are ignored)."""

    def __init__(self, *, query_size: int, key_size: int, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.W_a = nn.Linear(query_size, max_len)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        S = memory.size(1)
        logits = self.W_a(query)[..., :S]  # (B, T, min(S, max_len))
        if S > self.max_len:
            logits = F.pad(logits, (0, S - self.max_len), value=float("-inf"))  # (B, T, S)
        reachable = mask.clone()
        reachable[:, self.max_len :] = False
        weights = masked_softmax(logits, reachable)
        return finish(weighted_sum(weights, memory), weights, single)
