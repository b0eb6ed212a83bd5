"""Multi-head attention over the encoder states, Vaswani et al. 2017."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.errors import NmtError
from nmt.models.attention.interface import Attention, as_sequence, finish, masked_softmax
from nmt.models.attention.scores import ScoreFactory, build_score


class MultiHeadAttention(Attention):
    """Multi-head attention (Vaswani et al. 2017, section 3.2.2) over the encoder states:

        head_i = Attention_i(W^Q_i h_t, W^K_i h_s, W^V_i h_s)     (any score, per head)
        c_t = W^O [head_1; ...; head_H]

    with per-head projections of size d_h (default Dk / H) and W^O back to the memory size Dk.
    The weights it returns are the heads' mean (>= 0, 0 at padding, summing to 1);
    `head_weights` gives each head's.

    Args:
        heads: H.
        score: the heads' score, on the d_h-sized projections (one module shared by the heads;
            its own parameters, if any, act on every head).
        head_size: d_h.
    """

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        heads: int,
        score: ScoreFactory,
        head_size: int | None = None,
    ) -> None:
        super().__init__()
        if heads < 1:
            raise NmtError(f"model.attention.heads: must be >= 1, got {heads}")
        if head_size is None and key_size % heads:
            raise NmtError(
                f"model.attention.heads: {heads} heads do not divide the memory size "
                f"{key_size}; choose another number or set head_size"
            )
        self.heads, self.head_size = heads, head_size or key_size // heads
        inner = heads * self.head_size
        self.W_Q = nn.Linear(query_size, inner, bias=False)
        self.W_K = nn.Linear(key_size, inner, bias=False)
        self.W_V = nn.Linear(key_size, inner, bias=False)
        self.W_O = nn.Linear(inner, key_size, bias=False)
        self.score = build_score(score, self.head_size, self.head_size)

    def _split(self, x: Tensor) -> Tensor:
        """(B, L, H d) -> (B H, L, d): the heads folded into the batch."""
        B, L = x.shape[:2]
        return x.view(B, L, self.heads, -1).transpose(1, 2).flatten(0, 1)

    def _merge(self, x: Tensor, B: int) -> Tensor:
        """(B H, L, d) -> (B, L, H d)."""
        return x.view(B, self.heads, x.size(1), -1).transpose(1, 2).flatten(2)

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> [each head's score keys; W^V h_s]: (B, S, H d' + H d_h), once per batch."""
        keys = self.score.project_keys(self._split(self.W_K(memory)))  # (B H, S, d')
        return torch.cat([self._merge(keys, memory.size(0)), self.W_V(memory)], dim=-1)

    def head_weights(self, query: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, T, Dq) -> each head's weights (B, H, T, S) and values (B H, S, d_h)."""
        B = query.size(0)
        score_keys, values = keys.split(
            [keys.size(-1) - self.W_V.out_features, self.W_V.out_features], -1
        )
        q = self._split(self.W_Q(query))  # (B H, T, d_h)
        scores = self.score(q, self._split(score_keys))  # (B H, T, S)
        heads_mask = mask.repeat_interleave(self.heads, dim=0)  # (B H, S)
        weights = masked_softmax(scores, heads_mask)
        return weights.view(B, self.heads, *weights.shape[1:]), self._split(values)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        B = query.size(0)
        weights, values = self.head_weights(query, keys, mask)  # (B, H, T, S), (B H, S, d_h)
        heads = torch.matmul(weights.flatten(0, 1), values)  # (B H, T, d_h)
        context = self.W_O(self._merge(heads, B))  # (B, T, Dk)
        return finish(context, weights.mean(1), single)
