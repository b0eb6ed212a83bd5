"""Trace what a model's attention does while it trains.

    python scripts/trace_attention.py [--every N] NMT_TRAIN_OVERRIDES...

trains as `nmt-train OVERRIDES fast=false` would (the plain torch model, whose attention module
runs on every decoder call) and every N optimizer steps (default 10) prints one line, averaged
over the attention calls in training since the line before:

- entropy: of the weights over the source, renormalised, in nats (log S when uniform, 0 when on
  one position; nmt.evaluation.metrics.attention_entropy, the reports' figure);
- score std: the spread of a target position's raw scores over the real source positions
  (variants with a `score` function: Luong's dot, general, concat and the zoo's scored ones),
  what saturates a softmax;
- max weight: the largest weight of a target position, on average;
- on </s>: the share of target positions whose largest weight is on the source's last real
  position, its </s>.

Every decoder position of the batch counts, padding included. A softmax stuck on one position
shows as entropy near 0, a large score std and one position taking most argmaxes.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import nmt.training.run
from nmt.cli.train import main as train_main
from nmt.evaluation.metrics import attention_entropy
from nmt.models.attention import as_sequence
from nmt.models.build import build_model

FIELDS = ("entropy", "score std", "max weight", "on </s>")


def row_std(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over target positions of the scores' std over real source positions:
    (B, T, S) scores, (B, S) mask -> (). A shift of a row's scores leaves its softmax as it is
    and this figure too."""
    real = mask.unsqueeze(1).float()  # (B, 1, S)
    n = real.sum(-1)  # (B, 1)
    mean = (scores * real).sum(-1) / n  # (B, T)
    var = ((scores - mean.unsqueeze(-1)) ** 2 * real).sum(-1) / (n - 1).clamp_min(1)
    return var.sqrt().mean()


class Trace:
    """Sums of FIELDS over the attention calls since the last line."""

    def __init__(self, every: int) -> None:
        self.every, self.steps, self.calls = every, 0, 0
        self.sums = [0.0] * len(FIELDS)
        self.scored = 0  # calls with a score std

    @torch.no_grad()
    def record(self, attention, args, output) -> None:
        """Forward hook of the attention module, which nmt.models.attention.attend calls with
        (query, keys, memory, mask) and which returns (context, weights)."""
        if not attention.training:
            return
        query, keys, _, mask = args[:4]
        weights = output[1] if output[1].dim() == 3 else output[1].unsqueeze(1)  # (B, T, S)
        last = mask.sum(-1) - 1  # (B,) the source's </s>
        values = [
            attention_entropy([weights.flatten(0, 1)]),  # (B T, S)
            None,
            weights.max(-1).values.mean(),
            (weights.argmax(-1) == last.unsqueeze(1)).float().mean(),
        ]
        score = getattr(attention, "score", None)
        if isinstance(score, torch.nn.Module):
            values[1] = row_std(score(as_sequence(query)[0], keys), mask)
            self.scored += 1
        for i, value in enumerate(values):
            self.sums[i] += 0.0 if value is None else float(value)
        self.calls += 1

    def step(self, *_) -> None:
        """Optimizer step hook: a line every `every` steps."""
        self.steps += 1
        if self.steps % self.every or not self.calls:
            return
        means = [s / self.calls for s in self.sums]
        means[1] = self.sums[1] / self.scored if self.scored else float("nan")
        line = ", ".join(f"{name} {value:.2f}" for name, value in zip(FIELDS, means, strict=True))
        print(f"step {self.steps}: {line}", flush=True)
        self.sums, self.calls, self.scored = [0.0] * len(FIELDS), 0, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=10, help="optimizer steps per line")
    args, overrides = parser.parse_known_args()
    trace = Trace(args.every)

    def traced_model(*a, **kw):
        model = build_model(*a, **kw)
        model.decoder.attention.register_forward_hook(trace.record)
        return model

    nmt.training.run.build_model = traced_model
    register_optimizer_step_post_hook(trace.step)
    sys.argv = [sys.argv[0], *overrides, "fast=false"]
    train_main()


if __name__ == "__main__":
    main()
