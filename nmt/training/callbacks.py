"""Training callbacks: code that watches a run from inside the loop without changing it.

A callback is any object with these methods (each optional), which `Fit` calls on every rank:

    on_train_start(fit)            # before the first update (of this sitting); fit.model is built
    on_step(fit, loss, grad_norm)  # after each applied update: loss per target token
    on_validation(fit, record)     # on rank 0, after each validation: metrics.jsonl's record

`nmt-train` builds the `callbacks` node's entries (`+callbacks=trace_attention`, a file of
configs/callbacks/); the API takes them as objects (`Fit(..., callbacks=[...])`).

`AttentionTrace` is the diagnostics' callback: what a model's attention does while it trains.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from nmt import files
from nmt.errors import NmtError
from nmt.evaluation.metrics import attention_entropy
from nmt.models.attention import as_sequence, masked_softmax

log = logging.getLogger(__name__)

TRACE_FILE = "attention_trace.jsonl"


def call(callbacks: list[Any], hook: str, *args: Any) -> None:
    """`callback.hook(*args)` for every callback that has it."""
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)


def row_std(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over target positions of the scores' std over real source positions:
    (B, T, S) scores, (B, S) mask -> (). A shift of a row's scores leaves its softmax as it is
    and this figure too."""
    real = mask.unsqueeze(1).float()  # (B, 1, S)
    n = real.sum(-1)  # (B, 1)
    mean = (scores * real).sum(-1) / n  # (B, T)
    var = ((scores - mean.unsqueeze(-1)) ** 2 * real).sum(-1) / (n - 1).clamp_min(1)
    return var.sqrt().mean()


def pearson_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over rows of Pearson's r between x and y (B, T); rows with no spread count 0."""
    x, y = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    denominator = (x.pow(2).sum(-1) * y.pow(2).sum(-1)).sqrt()
    r = (x * y).sum(-1) / denominator.clamp_min(1e-12)
    return torch.where(denominator > 0, r, torch.zeros_like(r)).mean()


def position(x: torch.Tensor) -> torch.Tensor:
    """The target positions 0..T-1 of x (B, T), as x's shape and type."""
    return torch.arange(x.size(1), dtype=x.dtype, device=x.device).expand_as(x)


class AttentionTrace:
    """Every `every` updates, one line of RUN_DIR/attention_trace.jsonl (and of the log): means
    over the attention calls in training since the line before.

    - entropy: of the weights over the source, renormalised, in nats (log S when uniform, 0 when
      on one position; nmt.evaluation.metrics.attention_entropy, the reports' figure);
    - max_weight: the largest weight of a target position;
    - on_eos: the share of target positions whose largest weight is on the source's last real
      position, its </s>;
    - score_std: the spread of a target position's raw scores over the real source positions
      (variants with a `score` module), what saturates a softmax; soft_entropy, the entropy of
      softmax(scores) (for hard attention, of the weights it draws from);
    - local-p only (Luong et al. 2015, eq. 9): p_rel, the predicted position p_t as a share of
      the source (0: its first word, 1: its </s>); p_logit, the mean |v_p^T tanh(W_p h_t)|, whose
      sigmoid saturates past about 5; p_corr, Pearson's r between p_t and the target position
      within a sentence (near 1 when the window follows the sentence).

    Every decoder position of a batch counts, padding included. It needs the plain torch
    model (`fast=false`), whose attention module runs on every decoder call.
    """

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise NmtError(f"callbacks.trace_attention.every: must be at least 1, got {every}")
        self.every = every
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.steps: list[torch.Tensor] = []  # local-p's p_t (B,) of each decoder step, one update
        self.path = None

    def on_train_start(self, fit: Any) -> None:
        if fit.job.fast:
            raise NmtError(
                "callbacks.trace_attention: the fast layer runs attention inside its own "
                "kernels; trace with fast=false"
            )
        fit.model.decoder.attention.register_forward_hook(self.record)
        self.path = fit.run_dir / TRACE_FILE

    def add(self, name: str, value: torch.Tensor | float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.counts[name] = self.counts.get(name, 0) + 1

    @torch.no_grad()
    def record(self, attention: torch.nn.Module, args: tuple, output: tuple) -> None:
        """Forward hook of the attention module: (query, keys, memory, mask) in, (context,
        weights) out (nmt.models.attention.attend)."""
        if not attention.training:
            return
        query, keys, _, mask = args[:4]
        query = as_sequence(query)[0]  # (B, T, Dq)
        weights = output[1] if output[1].dim() == 3 else output[1].unsqueeze(1)  # (B, T, S)
        last = mask.sum(-1) - 1  # (B,) the source's </s>
        self.add("entropy", attention_entropy([weights.flatten(0, 1)]))
        self.add("max_weight", weights.max(-1).values.mean())
        self.add("on_eos", (weights.argmax(-1) == last.unsqueeze(1)).float().mean())
        score = getattr(attention, "score", None)
        if isinstance(score, torch.nn.Module):
            scores = score(query, keys)  # (B, T, S)
            self.add("score_std", row_std(scores, mask))
            soft = masked_softmax(scores, mask)  # what hard attention draws from
            self.add("soft_entropy", attention_entropy([soft.flatten(0, 1)]))
        if hasattr(attention, "W_p") and hasattr(attention, "v_p"):  # local-p's predictor
            logit = attention.v_p(torch.tanh(attention.W_p(query))).squeeze(-1)  # (B, T)
            self.add("p_rel", torch.sigmoid(logit).mean())
            self.add("p_logit", logit.abs().mean())
            if query.size(1) > 1:  # a whole target sequence at once
                self.add("p_corr", pearson_rows(torch.sigmoid(logit), position(logit)))
            else:  # one decoder step (input feeding): the update's steps are gathered
                self.steps.append(torch.sigmoid(logit[:, 0]))

    def on_step(self, fit: Any, loss: float, grad_norm: float) -> None:
        if len(self.steps) > 1:
            p = torch.stack(self.steps, dim=1)  # (B, T)
            self.add("p_corr", pearson_rows(p, position(p)))
        self.steps = []
        step = fit.state.step
        if step % self.every or not self.counts:
            return
        line = {"step": step} | {k: self.sums[k] / self.counts[k] for k in self.sums}
        shown = ", ".join(f"{k} {v:.3f}" for k, v in line.items() if k != "step")
        log.info("step %d attention: %s", step, shown)
        if fit.world.main and self.path is not None:
            files.append_jsonl(self.path, line)
        self.sums, self.counts = {}, {}
