"""Hard (stochastic) attention, Xu et al. 2015 ("Show, Attend and Tell"), section 4.1: the
context is the memory at one source position s~_t drawn from the soft weights alpha_t, rather
than their expectation.

In training the draw is not differentiable, so the score is trained by an estimator:

- `reinforce` (Xu et al. eq. 12): the score's gradient is
      lambda_r (log p(y | s~) - b) d log p(s~_t) / dW + lambda_e dH[alpha_t] / dW,
  b a moving average of the reward (b <- decay b + (1 - decay) reward). The reward of a
  sentence's draws is its mean token log-likelihood (Xu et al. take the caption's total; per
  token keeps sentences of different lengths comparable). The module adds this as a
  zero-valued surrogate term to the training loss through the model's loss-term hook
  (`Seq2Seq.loss`), so the loss's value, and the perplexity logged from it, stay the NLL.
- `gumbel`: straight-through Gumbel-softmax (Jang et al. 2017): the forward pass takes the
  one-hot arg-max of softmax((log alpha + g) / tau), g Gumbel noise; the backward pass the soft
  sample's gradient. No loss term.

Xu et al.'s second variance reducer (4.1: "with probability 0.5 we set the sampled attention
location s~ to its expected value alpha"; in the authors' code one Bernoulli draw per training
batch, `semi_sampling_p`) is `expected_p`: with that probability a teacher-forced pass attends
with the soft weights alpha_t themselves, trained by backpropagation, and adds no REINFORCE
term; otherwise it draws as above.

At evaluation the position is alpha_t's arg-max. The weights returned are one-hot (>= 0, 0 at
padding, summing to 1), alpha_t itself in an expected pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt.errors import NmtError
from nmt.models.attention.interface import (
    PassRecord,
    ScoredAttention,
    as_sequence,
    finish,
    masked_softmax,
    weighted_sum,
)
from nmt.models.attention.scores import ScoreFactory, build_score

ESTIMATORS = ("reinforce", "gumbel")


class HardAttention(ScoredAttention):
    """Attend to one position drawn from a_t = softmax_s(score(h_t, h_s)).

    Args:
        score: the score's factory (nmt.models.attention.scores; Xu et al.'s MLP is concat).
        estimator: "reinforce" or "gumbel" (see the module's docstring).
        temperature: tau of the Gumbel-softmax.
        reinforce_weight: lambda_r.
        entropy_weight: lambda_e, the weight of the entropy bonus (reinforce).
        baseline_decay: the moving average's decay (0.9 in Xu et al.).
        expected_p: the probability that a training pass uses the expected context (Xu et
            al.'s 0.5; 0: every pass draws).
    """

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        score: ScoreFactory,
        estimator: str = "reinforce",
        temperature: float = 1.0,
        reinforce_weight: float = 1.0,
        entropy_weight: float = 0.01,
        baseline_decay: float = 0.9,
        expected_p: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 <= expected_p <= 1:
            raise NmtError(f"model.attention.expected_p: must be in [0, 1], got {expected_p}")
        if estimator not in ESTIMATORS:
            raise NmtError(
                f"model.attention.estimator: '{estimator}' is not one of {', '.join(ESTIMATORS)}"
            )
        if temperature <= 0:
            raise NmtError(f"model.attention.temperature: must be > 0, got {temperature}")
        if not 0 <= baseline_decay < 1:
            raise NmtError(
                f"model.attention.baseline_decay: must be in [0, 1), got {baseline_decay}"
            )
        self.score = build_score(score, query_size, key_size)
        self.estimator = estimator
        self.temperature = temperature
        self.reinforce_weight = reinforce_weight
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.expected_p = expected_p
        self.expected = False  # this training pass attends with alpha_t itself (begin draws it)
        self.register_buffer("baseline", torch.tensor(0.0))  # b
        self.register_buffer("baseline_set", torch.tensor(False))  # b holds a reward yet

    takes_record = True  # a teacher-forced pass notes its draws for `loss_term`

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        memory: Tensor,
        mask: Tensor,
        step: int | Tensor = 0,
        record: PassRecord | None = None,
    ) -> tuple[Tensor, Tensor]:
        query, single = as_sequence(query)
        alpha = masked_softmax(self.score(query, keys), mask)  # (B, T, S)
        if not self.training:
            weights = F.one_hot(alpha.argmax(-1), alpha.size(-1)).to(alpha.dtype)
        elif self.expected:
            weights = alpha
        elif self.estimator == "gumbel":
            weights = self.gumbel_sample(alpha, mask)
        else:
            weights = self.reinforce_sample(alpha, record)
        return finish(weighted_sum(weights, memory), weights, single)

    def gumbel_sample(self, alpha: Tensor, mask: Tensor) -> Tensor:
        """Straight-through: one-hot forward, the soft sample's gradient. (B, T, S)."""
        gumbel = -torch.log(-torch.log(torch.rand_like(alpha).clamp(1e-10, 1 - 1e-7)))
        logits = (alpha.clamp_min(1e-30).log() + gumbel) / self.temperature
        soft = masked_softmax(logits, mask)
        hard = F.one_hot(soft.argmax(-1), soft.size(-1)).to(soft.dtype)
        return hard + soft - soft.detach()

    def reinforce_sample(self, alpha: Tensor, record: PassRecord | None) -> Tensor:
        """s~_t ~ Multinomial(a_t), one-hot (B, T, S); in a teacher-forced pass with gradients,
        log a_t(s~_t) and H[a_t] are noted in its `record` for `loss_term`."""
        B, T, S = alpha.shape
        position = torch.multinomial(alpha.detach().reshape(B * T, S), 1).view(B, T, 1)
        if record is not None and torch.is_grad_enabled():
            log_p = alpha.gather(-1, position).squeeze(-1).clamp_min(1e-30).log()  # (B, T)
            # (B, T); the clamp keeps padding's 0 log 0 = 0 out of the gradient (no NaN)
            entropy = -(alpha * alpha.clamp_min(1e-30).log()).sum(-1)
            record.note(self, (log_p, entropy))
        return F.one_hot(position.squeeze(-1), S).to(alpha.dtype)

    # --- the model's loss-term hook (Seq2Seq.loss) ---

    def begin(self) -> None:
        """Before a teacher-forced pass: it attends with the expected context with probability
        `expected_p` (one draw a pass)."""
        drawn = self.training and self.expected_p > 0  # p = 0 takes no random number
        self.expected = drawn and bool(torch.rand(()) < self.expected_p)

    def loss_term(self, nll: Tensor, tgt_mask: Tensor, record: PassRecord) -> Tensor:
        """The REINFORCE surrogate of the teacher-forced pass whose draws `record` holds, valued
        0 (its gradient is the estimator's): nll (B, T) the token NLL, 0 at padding; tgt_mask
        (B, T)."""
        draws = record.notes(self)
        if not draws:  # gumbel, evaluation, or no gradients
            return nll.new_zeros(())
        log_p = torch.cat([d[0] for d in draws], dim=1)  # (B, T)
        entropy = torch.cat([d[1] for d in draws], dim=1)
        if log_p.shape != nll.shape:
            shapes = f"{tuple(log_p.shape)} draws for {tuple(nll.shape)} targets"
            raise RuntimeError(f"hard attention: {shapes}")
        real = tgt_mask.to(nll.dtype)
        reward = -(nll * real).sum(1) / real.sum(1).clamp_min(1)  # (B,) mean log-likelihood
        with torch.no_grad():
            mean = reward.mean()
            b = torch.where(self.baseline_set, self.baseline, mean)  # the first batch's own mean
            advantage = reward - b  # (B,)
            self.baseline.copy_(self.baseline_decay * b + (1 - self.baseline_decay) * mean)
            self.baseline_set.fill_(True)
        surrogate = -(
            self.reinforce_weight * (advantage.unsqueeze(1) * log_p * real).sum()
            + self.entropy_weight * (entropy * real).sum()
        )
        return surrogate - surrogate.detach()
