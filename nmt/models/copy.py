"""Copying: the pointer-generator output layer (See et al. 2017, eqs. 8-9; Vinyals et al. 2015),
`model.copy=true`. The model's next-token distribution mixes the vocabulary softmax with the
attention weights scattered onto the source tokens' ids, so a token can be produced by pointing
at it in the source, even one the output layer never learned.

It needs a joint vocabulary (source ids are target ids): the builder refuses it otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PointerGenerator(nn.Module):
    """The pointer-generator's switch and mixture, See et al. 2017:

        h*_t = sum_s a_t(s) h_s                                          context (eq. 2)
        p_gen = sigmoid(w_h^T h*_t + w_s^T f_t + w_x^T x_t + b_ptr)      (eq. 8)
        P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{s: x_s = w} a_t(s)    (eq. 9)

    where f_t is the decoder's output features (the state the output layer reads: Luong's
    h~_t, Bahdanau's readout t_i), x_t the embedding of the previous target token, a_t the
    attention weights the decoder returned and x_s the source ids. The copy distribution uses
    a_t normalised over the source (local-p's weights are not), so P sums to 1.

    Rows: every argument is (N, ...) with one row per prediction, except `memory` (B, S, Dk)
    and `src_ids` (B, S), whose rows may each serve k consecutive prediction rows (the beams of
    a sentence in search), N = B k.

    Args:
        feature_size: of f_t; memory_size: Dk; emb_size: of x_t.
    """

    def __init__(self, *, feature_size: int, memory_size: int, emb_size: int) -> None:
        super().__init__()
        self.w_h = nn.Linear(memory_size, 1, bias=False)
        self.w_s = nn.Linear(feature_size, 1, bias=False)
        self.w_x = nn.Linear(emb_size, 1)  # its bias is b_ptr

    def switch(
        self, features: Tensor, emb: Tensor, weights: Tensor, memory: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The switch's logit z (N, 1), p_gen = sigmoid(z), and a_t normalised (N, S), in the
        memory's precision or float32 if lower."""
        dtype = torch.promote_types(memory.dtype, torch.float32)
        k = weights.size(0) // memory.size(0)
        a = weights.to(dtype)
        a = a / a.sum(-1, keepdim=True).clamp_min(1e-30)
        context = torch.matmul(a.view(memory.size(0), k, -1), memory.to(dtype)).flatten(0, 1)
        z = self.w_h(context) + self.w_s(features.to(dtype)) + self.w_x(emb.to(dtype))
        return z, a

    def forward(
        self,
        logits: Tensor,
        features: Tensor,
        emb: Tensor,
        weights: Tensor,
        memory: Tensor,
        src_ids: Tensor,
    ) -> Tensor:
        """log P(w): logits (N, V) = W_o f_t, features (N, H), emb (N, m), weights (N, S) ->
        (N, V) log-probabilities in `switch`'s precision."""
        z, a = self.switch(features, emb, weights, memory)  # (N, 1), (N, S)
        k = weights.size(0) // src_ids.size(0)
        ids = src_ids.repeat_interleave(k, dim=0) if k > 1 else src_ids  # (N, S)
        copy = torch.zeros_like(logits, dtype=a.dtype).scatter_add(-1, ids, a)  # (N, V)
        log_copy = torch.where(copy > 0, copy.clamp_min(1e-30).log(), float("-inf"))
        generate = F.logsigmoid(z) + torch.log_softmax(logits.to(a.dtype), dim=-1)
        return torch.logaddexp(generate, F.logsigmoid(-z) + log_copy)
