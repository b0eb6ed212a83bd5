"""Luong et al. 2015's local attention (section 3.2): local-m and local-p, and their windows."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.errors import NmtError
from nmt.models.attention.interface import (
    ScoredAttention,
    as_sequence,
    finish,
    masked_softmax,
    weighted_sum,
)
from nmt.models.attention.scores import ScoreFactory, build_score


def check_window(window: int) -> int:
    """D, refused in one line unless at least 1."""
    if window < 1:
        raise NmtError(f"model.attention.window: D must be >= 1, got {window}")
    return window


def window_mask(centre: Tensor, mask: Tensor, D: int) -> Tensor:
    """Positions s with floor(centre) - D <= s <= floor(centre) + D that are real tokens.

    Args:
        centre: (B, T) window centres p_t (real-valued for local-p).
        mask: (B, S) bool.
    Returns:
        (B, T, S) bool.
    """
    s = torch.arange(mask.size(1), device=mask.device)  # (S,)
    left = centre.floor().unsqueeze(-1) - D  # (B, T, 1)
    return (s >= left) & (s <= left + 2 * D) & mask.unsqueeze(1)


def steps_tensor(step: int | Tensor, T: int, device: torch.device) -> Tensor:
    """The target positions of a query: (T,) for the whole-sequence form, (1,) for one step."""
    if isinstance(step, Tensor):
        return step.to(device).reshape(T)
    return torch.full((T,), step, device=device)


class LocalMAttention(ScoredAttention):
    """Luong et al. 2015, local-m (monotonic) attention, 3.2: the global model restricted to the
    window [p_t - D, p_t + D] around p_t = t (0-based, clamped to the last real position S - 1),
    cut to the sentence; softmax of the score over the window, exactly 0 outside.

    Args:
        score: the score's factory (nmt.models.attention.scores).
        window: D (the paper: 10).
    """

    def __init__(self, *, query_size: int, key_size: int, score: ScoreFactory, window: int) -> None:
        super().__init__()
        self.score = build_score(score, query_size, key_size)
        self.window = check_window(window)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        t = steps_tensor(step, query.size(1), query.device)  # (T,)
        last = (mask.sum(-1) - 1).unsqueeze(1)  # (B, 1)
        centre = torch.minimum(t.unsqueeze(0), last).to(query.dtype)  # (B, T)
        inside = window_mask(centre, mask, self.window)  # (B, T, S)
        weights = masked_softmax(self.score(query, keys), inside)
        return finish(weighted_sum(weights, memory), weights, single)


class LocalPAttention(ScoredAttention):
    """Luong et al. 2015, local-p (predictive) attention, eq. (9)-(10), as in the authors' code:

        p_t = (S - 1) sigmoid(v_p^T tanh(W_p h_t))             (0-based, S real source tokens)
        a_t(s) = softmax_{s in window}(score(h_t, h_s)) exp(-(s - p_t)^2 / (2 sigma^2))

    over the window [floor(p_t) - D, floor(p_t) + D] cut to the sentence, sigma = D / 2, and not
    renormalised (the authors found renormalising worse; `renormalize=True` offers it). W_p and
    v_p learn through p_t.

    `predictor_lr` (not in the paper, 1 there) trains W_p and v_p at that share of the model's
    rate: a labelled remedy for p_t driven to one end of the source and its sigmoid saturated
    there within the first updates under Adam (docs/results/diagnostics). The optimizer reads
    it from `lr_scales`.
    """

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        score: ScoreFactory,
        window: int,
        renormalize: bool = False,
        predictor_lr: float = 1.0,
    ) -> None:
        super().__init__()
        if not predictor_lr > 0:
            raise NmtError(f"model.attention.predictor_lr: must be > 0, got {predictor_lr}")
        self.score = build_score(score, query_size, key_size)
        self.window = check_window(window)
        self.renormalize = renormalize
        self.predictor_lr = predictor_lr
        self.W_p = nn.Linear(query_size, query_size, bias=False)
        self.v_p = nn.Linear(query_size, 1, bias=False)

    def lr_scales(self) -> dict[nn.Parameter, float]:
        """The parameters to train at a share of the model's rate, with their share."""
        if self.predictor_lr == 1.0:
            return {}
        return {p: self.predictor_lr for p in (self.W_p.weight, self.v_p.weight)}

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor, step: int | Tensor = 0
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        S_real = (mask.sum(-1, keepdim=True) - 1).to(query.dtype)  # (B, 1): S - 1
        p = S_real * torch.sigmoid(self.v_p(torch.tanh(self.W_p(query)))).squeeze(-1)  # (B, T)
        inside = window_mask(p.detach(), mask, self.window)  # (B, T, S)
        align = masked_softmax(self.score(query, keys), inside)
        s = torch.arange(mask.size(1), device=query.device, dtype=query.dtype)
        sigma = self.window / 2
        gaussian = torch.exp(-((s - p.unsqueeze(-1)) ** 2) / (2 * sigma**2))  # (B, T, S)
        weights = align * gaussian
        if self.renormalize:
            weights = weights / weights.sum(-1, keepdim=True)
        return finish(weighted_sum(weights, memory), weights, single)
