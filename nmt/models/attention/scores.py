"""Score functions: score(h_t, h_s), Luong et al. 2015 eq. (8) and the wider taxonomy, shared by
the global, local, multi-head and hard variants. Each is a module built with the query and key
sizes (`query_size`, `key_size`) and its own options, with

    keys = score.project_keys(memory)        # (B, S, Dk) -> (B, S, D'), once a batch
    scores = score(query, keys)              # query (B, T, Dq) -> (B, T, S)

A variant takes its score as a factory, `score(query_size=..., key_size=...)`: the class itself,
a `functools.partial` of it with options, or what nmt.models.build makes of a config's
`model.attention.score` node (a config group, `model/attention/score=NAME`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.errors import NmtError

# What a variant's `score` argument is: called with the sizes, it builds the score module.
ScoreFactory = Callable[..., nn.Module]


def build_score(score: ScoreFactory, query_size: int, key_size: int) -> nn.Module:
    """The score module `score` makes for these sizes; one line for anything that is not a
    factory (a name, as configs saved before scores became nodes have)."""
    if not callable(score):
        raise NmtError(
            f"model.attention.score: {score!r} is not a score; choose one with "
            "model/attention/score=NAME (configs/model/attention/score/)"
        )
    return score(query_size=query_size, key_size=key_size)


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
