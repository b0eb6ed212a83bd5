"""Attention variants behind one interface (DESIGN.md):

    keys = attn.project_keys(memory)                      # pure; the decoder keeps it as a local
    context, weights = attn(query, keys, memory, mask, step=t)

query (B, Dq) at one step, or (B, T, Dq) for a whole sequence; memory (B, S, Dk) encoder states in
source order; mask (B, S) bool, True at real tokens; context (B, Dk) or (B, T, Dk); weights (B, S)
or (B, T, S), >= 0, exactly 0 at padding, summing to 1 over real positions.

Each variant is one small module; the shared maths are the free functions below. A variant may
also keep a state across the steps of one sentence (nmt.models.stateful_attention: NTM
addressing, coverage). It declares it with

    state = attn.initial_state(memory, mask)              # tuple of (B, ...) tensors
    context, weights, state = attn(query, keys, memory, mask, step=t, state=state)

where a (B, T, Dq) query is T independent queries of one step (the beams of a sentence), each
with its own state, (B, T, ...). Decoders carry it at the end of their own state tuple, so
search reorders and prunes it with the rest; they reach every variant through `attend`,
`attention_state` and `is_stateful` below, and stateless variants keep their signature and
their whole-sequence form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.errors import NmtError


def as_sequence(query: Tensor) -> tuple[Tensor, bool]:
    """(B, Dq) -> (B, 1, Dq); (B, T, Dq) unchanged. Also says whether it was a single step."""
    return (query.unsqueeze(1), True) if query.dim() == 2 else (query, False)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with exact zeros where `mask` is False.

    Args:
        scores: (B, T, S) logits.
        mask: (B, S) or (B, T, S) bool, True where allowed (every row has at least one).
    """
    if mask.dim() == 2:
        mask = mask.unsqueeze(1)  # (B, 1, S)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def weighted_sum(weights: Tensor, memory: Tensor) -> Tensor:
    """(B, T, S) weights x (B, S, Dk) memory -> (B, T, Dk) contexts."""
    return torch.matmul(weights, memory)


def is_stateful(attention: nn.Module) -> bool:
    """Whether the variant keeps a state across steps (it has `initial_state`)."""
    return hasattr(attention, "initial_state")


def attention_state(attention: nn.Module, memory: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
    """The variant's state before the first step, (B, ...) tensors in the memory's precision;
    () for a stateless variant."""
    if not is_stateful(attention):
        return ()
    with torch.autocast(memory.device.type, enabled=False):
        return tuple(attention.initial_state(memory, mask))


def attend(
    attention: nn.Module,
    query: Tensor,
    keys: Tensor,
    memory: Tensor,
    mask: Tensor,
    step,
    state: tuple[Tensor, ...] = (),
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """attention(query, keys, memory, mask, step=step[, state=state]) -> context, weights and
    the new state (() for a stateless variant). At one step each memory row may serve k
    consecutive query rows (the k beams of a sentence in beam search), so the memory need not
    be copied per beam: query (B k, Dq), memory (B, S, Dk), state (B k, ...) -> context
    (B k, Dk), weights (B k, S), state (B k, ...). The k rows go through the whole-sequence
    form, as k queries at step `step` (an int), each with its own state.

    Under autocast attention runs in the memory's precision (float32): its products are small,
    and their shapes change with every batch's source length, which in low precision would make
    oneDNN compile and keep another kernel for each shape."""
    if torch.is_autocast_enabled(memory.device.type):
        with torch.autocast(memory.device.type, enabled=False):
            return attend(attention, query.to(memory.dtype), keys, memory, mask, step, state)
    stateful = is_stateful(attention)
    B = memory.size(0)
    if query.dim() != 2 or query.size(0) == B:
        if not stateful:
            return (*attention(query, keys, memory, mask, step=step), ())
        return attention(query, keys, memory, mask, step=step, state=state)
    query = query.view(B, -1, query.size(-1))  # (B, k, Dq)
    if not stateful:
        context, weights = attention(query, keys, memory, mask, step=step)
        return context.flatten(0, 1), weights.flatten(0, 1), ()
    state = tuple(s.view(B, -1, *s.shape[1:]) for s in state)  # (B, k, ...)
    context, weights, state = attention(query, keys, memory, mask, step=step, state=state)
    return context.flatten(0, 1), weights.flatten(0, 1), tuple(s.flatten(0, 1) for s in state)


def project_keys(attention: nn.Module, memory: Tensor) -> Tensor:
    """attention.project_keys(memory), in the memory's precision under autocast (as `attend`)."""
    with torch.autocast(memory.device.type, enabled=False):
        return attention.project_keys(memory)


def finish(context: Tensor, weights: Tensor, single_step: bool) -> tuple[Tensor, Tensor]:
    if single_step:
        return context.squeeze(1), weights.squeeze(1)
    return context, weights


class Attention(nn.Module):
    """What the variants here share (a variant from elsewhere need not derive from it): the keys
    are the memory itself unless a variant projects them."""

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) memory -> keys (B, S, D'), computed once per batch."""
        return memory


class ScoredAttention(Attention):
    """A variant whose score function (`self.score`, Luong eq. (8)) projects the keys."""

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.score.project_keys(memory)


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


# --- Luong et al. 2015, eq. (8): score functions, shared by the global and local variants ------


class DotScore(nn.Module):
    """score(h_t, h_s) = h_t^T h_s (needs Dq = Dk); no parameters."""

    def __init__(self, *, query_size: int, key_size: int) -> None:
        super().__init__()
        if query_size != key_size:
            raise NmtError(
                f"dot attention needs the query size to equal the key size, got {query_size} "
                f"(decoder) and {key_size} (encoder): size the decoder as the encoder output "
                "(model.decoder_size=null) or use general, concat or bahdanau"
            )

    def project_keys(self, memory: Tensor) -> Tensor:
        return memory

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (B, T, Dq), keys (B, S, Dk) -> scores (B, T, S)."""
        return torch.matmul(query, keys.transpose(-1, -2))


class GeneralScore(nn.Module):
    """score(h_t, h_s) = h_t^T W_a h_s; W_a maps keys to the query size, once per batch."""

    def __init__(self, *, query_size: int, key_size: int) -> None:
        super().__init__()
        self.W_a = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> W_a h_s: (B, S, Dq)."""
        return self.W_a(memory)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.matmul(query, keys.transpose(-1, -2))  # (B, T, S)


class ConcatScore(nn.Module):
    """score(h_t, h_s) = v_a^T tanh(W_a [h_t; h_s]). W_a is one (n', Dq + Dk) matrix; its key
    block is applied once per batch and its query block once per step."""

    def __init__(self, *, query_size: int, key_size: int, hidden_size: int | None = None) -> None:
        super().__init__()
        hidden_size = hidden_size or query_size
        self.query_size = query_size
        self.W_a = nn.Linear(query_size + key_size, hidden_size, bias=False)
        self.v_a = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> W_a[:, Dq:] h_s: (B, S, n')."""
        return F.linear(memory, self.W_a.weight[:, self.query_size :])

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        q = F.linear(query, self.W_a.weight[:, : self.query_size])  # (B, T, n')
        hidden = torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, n')
        return self.v_a(hidden).squeeze(-1)  # (B, T, S)


class ScaledDotScore(DotScore):
    """score(h_t, h_s) = h_t^T h_s / sqrt(d) (Vaswani et al. 2017, eq. 1; needs Dq = Dk = d):
    the dot product kept at unit variance as d grows, so the softmax does not saturate."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.matmul(query, keys.transpose(-1, -2)) / math.sqrt(query.size(-1))


class ProjectedScaledDotScore(nn.Module):
    """score(h_t, h_s) = (W^Q h_t)^T (W^K h_s) / sqrt(d_k) (Vaswani et al. 2017, eq. 1 and 3.2.2,
    one head): the scaled dot product of learned projections, as Vaswani et al.'s queries and
    keys are. Their scaling assumes components of unit variance, which projections can learn;
    the unprojected `scaled_dot` divides raw decoder and encoder states by sqrt(d). W^K maps the
    memory once per batch.

    Args:
        size: d_k (default: the key size).
    """

    def __init__(self, *, query_size: int, key_size: int, size: int | None = None) -> None:
        super().__init__()
        self.size = size or key_size
        self.W_q = nn.Linear(query_size, self.size, bias=False)
        self.W_k = nn.Linear(key_size, self.size, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> W^K h_s: (B, S, d_k)."""
        return self.W_k(memory)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (B, T, Dq), keys (B, S, d_k) -> scores (B, T, S)."""
        return torch.matmul(self.W_q(query), keys.transpose(-1, -2)) / math.sqrt(self.size)


class CosineScore(nn.Module):
    """NTM content addressing (Graves et al. 2014, eqs. 5-6): score(h_t, h_s) =
    beta_t K(h_t, W_k h_s), K the cosine similarity and beta_t = softplus(w_beta^T h_t + b_beta)
    >= 0 the key strength the query emits (the softmax then gives eq. 5's weights). W_k maps
    the memory to the query size, once per batch."""

    def __init__(self, *, query_size: int, key_size: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.W_k = nn.Linear(key_size, query_size, bias=False)
        self.w_beta = nn.Linear(query_size, 1)
        self.eps = eps

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> W_k h_s / ||W_k h_s||: (B, S, Dq)."""
        keys = self.W_k(memory)
        return keys / keys.norm(dim=-1, keepdim=True).clamp_min(self.eps)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        beta = F.softplus(self.w_beta(query))  # (B, T, 1)
        unit = query / query.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        return beta * torch.matmul(unit, keys.transpose(-1, -2))  # (B, T, S)


class KernelScore(nn.Module):
    """A Gaussian (RBF) kernel between projected query and key, as in Tsai et al. 2019
    ("Transformer Dissection", section 3): a_t(s) = k(h_t, h_s) / sum_s' k(h_t, h_s') with

        k(h_t, h_s) = exp(-||W_q h_t - W_k h_s||^2 / (2 sigma^2)),

    so the score (the softmax's logit) is the kernel's exponent. sigma is learned (as log sigma)
    unless `learn_bandwidth` is false.

    Args:
        hidden_size: the projections' size (default: query_size).
        bandwidth: sigma's initial (or fixed) value (default: sqrt(hidden_size), which keeps
            the exponent's scale that of a scaled dot product).
    """

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        hidden_size: int | None = None,
        bandwidth: float | None = None,
        learn_bandwidth: bool = True,
    ) -> None:
        super().__init__()
        hidden_size = hidden_size or query_size
        if bandwidth is not None and bandwidth <= 0:
            raise NmtError(f"model.attention.score.bandwidth: sigma must be > 0, got {bandwidth}")
        self.W_q = nn.Linear(query_size, hidden_size, bias=False)
        self.W_k = nn.Linear(key_size, hidden_size, bias=False)
        log_sigma = torch.tensor(math.log(bandwidth or math.sqrt(hidden_size)))
        if learn_bandwidth:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) -> W_k h_s: (B, S, n')."""
        return self.W_k(memory)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.W_q(query)  # (B, T, n')
        # ||q - k||^2 = ||q||^2 - 2 q.k + ||k||^2, without a (B, T, S, n') difference tensor
        distance = (
            q.pow(2).sum(-1, keepdim=True)
            - 2 * torch.matmul(q, keys.transpose(-1, -2))
            + keys.pow(2).sum(-1).unsqueeze(-2)
        ).clamp_min(0)  # (B, T, S)
        return -distance / (2 * torch.exp(2 * self.log_sigma))


SCORES = {
    "dot": DotScore,
    "general": GeneralScore,
    "concat": ConcatScore,
    "scaled_dot": ScaledDotScore,
    "scaled_dot_projected": ProjectedScaledDotScore,
    "cosine": CosineScore,
    "kernel": KernelScore,
}


def build_score(score: str | Mapping, query_size: int, key_size: int) -> nn.Module:
    """A score module by name, or from {name: NAME, OPTION: VALUE...} (the kernel's bandwidth,
    concat's hidden_size)."""
    options = dict(score) if isinstance(score, Mapping) else {"name": score}
    name = options.pop("name", None)
    if name not in SCORES:
        raise NmtError(f"model.attention.score: '{name}' is not one of {', '.join(SCORES)}")
    try:
        return SCORES[name](query_size=query_size, key_size=key_size, **options)
    except TypeError as err:  # an option the score does not take
        raise NmtError(f"model.attention.score: {err}") from None


class GlobalAttention(ScoredAttention):
    """Luong et al. 2015, global attention, eq. (7)-(8): a_t = softmax_s(score(h_t, h_s)) over
    every source position, c_t = sum_s a_t(s) h_s.

    Args:
        score: a name of SCORES ("dot", "general", "concat", "scaled_dot",
            "scaled_dot_projected", "cosine", "kernel")
            or {name: ..., options}; the parameters live on the `score` child.
    """

    def __init__(self, *, query_size: int, key_size: int, score: str | Mapping) -> None:
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

    def __init__(self, *, query_size: int, key_size: int, max_len: int = 128) -> None:
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


def check_window(window: int) -> int:
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
        score: a name of SCORES or {name: ..., options}.
        window: D (the paper: 10).
    """

    def __init__(
        self, *, query_size: int, key_size: int, score: str | Mapping, window: int = 10
    ) -> None:
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
        score: str | Mapping,
        window: int = 10,
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


class MultiHeadAttention(Attention):
    """Multi-head attention (Vaswani et al. 2017, section 3.2.2) over the encoder states:

        head_i = Attention_i(W^Q_i h_t, W^K_i h_s, W^V_i h_s)     (any SCORES score, per head)
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
        heads: int = 4,
        score: str | Mapping = "scaled_dot",
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
