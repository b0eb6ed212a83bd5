"""Attention variants with a state across the steps of a sentence (the stateful extension of
the interface, nmt.models.attention.interface): each weighs the source by what it weighed before.

    state = attn.initial_state(memory, mask)                        # tuple of (B, S) tensors
    context, weights, state = attn(query, keys, memory, mask, step=t, state=state)

query (B, Dq) at one step, or (B, T, Dq): T independent queries of one step (the beams of a
sentence), each with its own state (B, T, S). Teacher forcing therefore calls them one step at
a time. Weights are >= 0, exactly 0 at padding and sum to 1 over the real positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.errors import NmtError
from nmt.models.attention.interface import (
    Attention,
    PassRecord,
    as_sequence,
    masked_softmax,
    weighted_sum,
)
from nmt.models.attention.scores import CosineScore


def as_state(state: Tensor, single: bool) -> Tensor:
    """(B, S) -> (B, 1, S) for a single-step query; (B, T, S) unchanged."""
    return state.unsqueeze(1) if single else state


def shift_indices(mask: Tensor, offset: int) -> Tensor:
    """(B, S) index of position (s - offset) mod L of each real position s, L the sentence's
    real length (padding positions index themselves): NTM's circular shift within a sentence."""
    s = torch.arange(mask.size(1), device=mask.device)  # (S,)
    length = mask.sum(-1, keepdim=True)  # (B, 1)
    return torch.where(mask, (s - offset) % length, s)


class StatefulAttention(Attention):
    """The stateful interface over one (B, S) state tensor: a subclass gives `weigh`, the
    step's weights and next state from the queries and the previous state, each (B, T, ...)."""

    def weigh(
        self, query: Tensor, keys: Tensor, mask: Tensor, state: Tensor, record: PassRecord | None
    ) -> tuple[Tensor, Tensor]:
        """query (B, T, Dq), state (B, T, S) -> weights (B, T, S), the next state (B, T, S);
        `record`, in a teacher-forced pass, for what a loss term needs."""
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        memory: Tensor,
        mask: Tensor,
        step: int | Tensor = 0,
        state: tuple[Tensor] = (),
        record: PassRecord | None = None,
    ) -> tuple[Tensor, Tensor, tuple[Tensor]]:
        query, single = as_sequence(query)  # (B, T, Dq)
        (previous,) = state
        weights, state_t = self.weigh(query, keys, mask, as_state(previous, single), record)
        context = weighted_sum(weights, memory)
        if single:
            return context.squeeze(1), weights.squeeze(1), (state_t.squeeze(1),)
        return context, weights, (state_t,)


class NTMAttention(StatefulAttention):
    """Neural Turing Machine addressing, Graves et al. 2014, 3.3: content addressing followed
    by location addressing, the previous step's weights w_{t-1} the state.

        w^c_t = softmax_s(beta_t cos(h_t, W_k h_s))                  content (eqs. 5-6)
        w^g_t = g_t w^c_t + (1 - g_t) w_{t-1}                        interpolation (7)
        w~_t(s) = sum_j w^g_t(j) r_t(s - j),  r_t over {-1, 0, +1}   shift (8), circular over
                                                                    the sentence's L positions
        w_t(s) = w~_t(s)^gamma_t / sum_j w~_t(j)^gamma_t             sharpening (9)

    with the key strength beta_t = softplus(w_beta^T h_t + b_beta) (CosineScore), the gate
    g_t = sigmoid(w_g^T h_t + b_g), the shift weights r_t = softmax(W_r h_t + b_r) and
    gamma_t = 1 + softplus(w_gamma^T h_t + b_gamma) >= 1, all emitted by the query h_t (the
    decoder state, NTM's controller output). The head starts on the first source position:
    w_0 is one-hot there. Sharpening is computed as softmax(gamma log w~), the same ratio
    without underflow.
    """

    SHIFTS = (-1, 0, 1)

    def __init__(self, *, query_size: int, key_size: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.content = CosineScore(query_size=query_size, key_size=key_size, eps=eps)
        self.w_g = nn.Linear(query_size, 1)
        self.W_r = nn.Linear(query_size, len(self.SHIFTS))
        self.w_gamma = nn.Linear(query_size, 1)

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.content.project_keys(memory)

    def initial_state(self, memory: Tensor, mask: Tensor) -> tuple[Tensor]:
        """w_0: (B, S), one-hot at the first position (every sentence has one)."""
        w = torch.zeros(mask.shape, dtype=memory.dtype, device=memory.device)
        w[:, 0] = 1.0
        return (w,)

    def weigh(
        self, query: Tensor, keys: Tensor, mask: Tensor, w_prev: Tensor, record: PassRecord | None
    ) -> tuple[Tensor, Tensor]:
        """w_t from w_{t-1} (B, T, S); the next state is w_t itself."""
        w_c = masked_softmax(self.content(query, keys), mask)  # (B, T, S)
        g = torch.sigmoid(self.w_g(query))  # (B, T, 1)
        w_g = g * w_c + (1 - g) * w_prev
        r = torch.softmax(self.W_r(query), dim=-1)  # (B, T, 3): shifts -1, 0, +1
        shifted = torch.zeros_like(w_g)
        for k, offset in enumerate(self.SHIFTS):  # w~(s) += r(offset) w^g(s - offset)
            index = shift_indices(mask, offset).unsqueeze(1).expand_as(w_g)
            shifted = shifted + r[..., k : k + 1] * w_g.gather(-1, index)
        gamma = 1 + F.softplus(self.w_gamma(query))  # (B, T, 1)
        weights = masked_softmax(gamma * shifted.clamp_min(1e-30).log(), mask)
        return weights, weights


class CoverageLoss(nn.Module):
    """See et al. 2017's coverage loss, eq. (12), through the model's loss-term hook
    (Seq2Seq.loss): lambda sum_t sum_s min(a_t(s), c_t(s)) over the real target tokens, from
    the steps of a teacher-forced pass with gradients, which its attention notes in the pass's
    record."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def note(self, record: PassRecord | None, weights: Tensor, coverage: Tensor) -> None:
        """weights and coverage (B, T', S) of one step's queries, noted as
        sum_s min(a_t(s), c_t(s)) (B, T') in a teacher-forced pass with gradients."""
        if record is not None and torch.is_grad_enabled():
            record.note(self, torch.minimum(weights, coverage).sum(-1))

    def loss_term(self, nll: Tensor, tgt_mask: Tensor, record: PassRecord) -> Tensor:
        """lambda times the overlap the pass noted, over the real target tokens (B, T)."""
        steps = record.notes(self)
        if not steps:  # evaluation, or no gradients
            return nll.new_zeros(())
        overlap = torch.cat(steps, dim=1)  # (B, T)
        if overlap.shape != nll.shape:
            shapes = f"{tuple(overlap.shape)} steps for {tuple(nll.shape)} targets"
            raise RuntimeError(f"coverage loss: {shapes}")
        return self.weight * (overlap * tgt_mask.to(overlap.dtype)).sum()


class CoverageAttention(StatefulAttention):
    """Additive attention with a coverage vector, Tu et al. 2016 / See et al. 2017, eq. (11):

        e_t(s) = v^T tanh(W_h h_s + W_q q_t + w_c c_t(s) + b)
        a_t = softmax_s(e_t),   c_{t+1} = c_t + a_t,   c_0 = 0

    c_t, the sum of the earlier steps' weights, is the state: the score sees how much each
    source position has been attended, which discourages attending to it again. W_h h_s + b is
    computed once per batch.

    Args:
        hidden_size: the score's hidden size (default: query_size).
        coverage_loss: lambda of See et al.'s coverage loss, eq. (12) (0: none), added to the
            training loss through the loss-term hook (`CoverageLoss`).
    """

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        hidden_size: int | None = None,
        coverage_loss: float = 0.0,
    ) -> None:
        super().__init__()
        if coverage_loss < 0:
            raise NmtError(f"model.attention.coverage_loss: must be >= 0, got {coverage_loss}")
        hidden_size = hidden_size or query_size
        self.W_h = nn.Linear(key_size, hidden_size)
        self.W_q = nn.Linear(query_size, hidden_size, bias=False)
        self.w_c = nn.Parameter(torch.empty(hidden_size).uniform_(-0.1, 0.1))
        self.v = nn.Linear(hidden_size, 1, bias=False)
        self.coverage_loss = CoverageLoss(coverage_loss) if coverage_loss > 0 else None

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> W_h h_s + b: (B, S, n')."""
        return self.W_h(memory)

    def initial_state(self, memory: Tensor, mask: Tensor) -> tuple[Tensor]:
        """c_0 = 0: (B, S)."""
        return (torch.zeros(mask.shape, dtype=memory.dtype, device=memory.device),)

    takes_record = True  # a teacher-forced pass notes the overlap for the coverage loss

    def weigh(
        self, query: Tensor, keys: Tensor, mask: Tensor, coverage: Tensor, record: PassRecord | None
    ) -> tuple[Tensor, Tensor]:
        """a_t and c_{t+1} = c_t + a_t from c_t (B, T, S)."""
        hidden = torch.tanh(
            keys.unsqueeze(1) + self.W_q(query).unsqueeze(2) + coverage.unsqueeze(-1) * self.w_c
        )  # (B, T, S, n')
        weights = masked_softmax(self.v(hidden).squeeze(-1), mask)  # (B, T, S)
        if self.coverage_loss is not None:
            self.coverage_loss.note(record, weights, coverage)
        return weights, coverage + weights
