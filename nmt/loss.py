"""The output layer and token cross-entropy in one pass over chunks of tokens.

The plain form, `F.cross_entropy(generator(features), targets)`, keeps the (N, V) logits, their
log-softmax and a dense (N, V) gradient alive between forward and backward: for a batch of 3,000
target tokens and V = 8,000 that is three ~100 MB buffers, fresh memory at every step. Here each
chunk of tokens computes its logits, its loss and at once the gradients of W_s, b_s and the
features (the gradient of a summed cross-entropy is softmax(z) - onehot(y), known in the
forward pass), so only a (chunk, V) buffer is ever alive. The matrix products are the same three
as autograd's; the log-softmax and its backward become one in-place exp pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CHUNK = 1024  # tokens per chunk: (1024, 8000) float32 logits are 32 MB


def _chunk_logits(x: Tensor, weight: Tensor, bias: Tensor, out: Tensor) -> Tensor:
    """z = x W^T + b written into `out`[: len(x)]. x (n, D) -> (n, V)."""
    return torch.addmm(bias, x, weight.t(), out=out[: x.size(0)])


def _chunk_loss(z: Tensor, y: Tensor, label_smoothing: float) -> tuple[Tensor, Tensor]:
    """Summed smoothed cross-entropy of logits z (n, V) against y (n,), and logsumexp (n,).

    With smoothing eps, loss = (1 - eps) * (lse - z_y) + eps * (lse - mean(z)), torch's form.
    """
    lse = torch.logsumexp(z, dim=-1)  # (n,)
    loss = (lse - z.gather(1, y.unsqueeze(1)).squeeze(1)).sum()
    if label_smoothing:
        smooth = (lse - z.mean(dim=-1)).sum()
        loss = (1 - label_smoothing) * loss + label_smoothing * smooth
    return loss, lse


class _LinearCrossEntropy(torch.autograd.Function):
    """loss = sum_i CE(x_i W^T + b, y_i); gradients computed in forward, scaled in backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, y, label_smoothing, chunk):  # noqa: D102 (see class)
        grad_x = torch.empty_like(x)
        grad_w = torch.zeros_like(weight)
        grad_b = torch.zeros_like(bias)
        buffer = x.new_empty(min(chunk, x.size(0)), weight.size(0))  # (chunk, V), reused
        total = x.new_zeros(())
        rows = torch.arange(buffer.size(0), device=x.device)
        for start in range(0, x.size(0), chunk):
            x_c, y_c = x[start : start + chunk], y[start : start + chunk]  # (n, D), (n,)
            z = _chunk_logits(x_c, weight, bias, buffer)
            loss, lse = _chunk_loss(z, y_c, label_smoothing)
            total += loss
            # dloss/dz = softmax(z) - (1 - eps) onehot(y) - eps / V, built in place in z
            z.sub_(lse.unsqueeze(1)).exp_()
            if label_smoothing:
                z.sub_(label_smoothing / z.size(1))
            z[rows[: z.size(0)], y_c] -= 1 - label_smoothing
            torch.mm(z, weight, out=grad_x[start : start + chunk])  # (n, D)
            grad_w.addmm_(z.t(), x_c)  # (V, D)
            grad_b += z.sum(dim=0)  # (V,)
        ctx.save_for_backward(grad_x, grad_w, grad_b)
        return total

    @staticmethod
    def backward(ctx, grad_loss):  # noqa: D102
        grad_x, grad_w, grad_b = ctx.saved_tensors
        return grad_x * grad_loss, grad_w * grad_loss, grad_b * grad_loss, None, None, None


def plain_linear_cross_entropy(
    x: Tensor, weight: Tensor, bias: Tensor, y: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """The same sum through autograd with the whole (N, V) logits: used under autocast, and by
    scripts/benchmark.py --plain-loss for before/after runs."""
    logits = F.linear(x, weight, bias)  # (N, V)
    return F.cross_entropy(logits, y, reduction="sum", label_smoothing=label_smoothing)


def linear_cross_entropy(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    y: Tensor,
    label_smoothing: float = 0.0,
    chunk: int = CHUNK,
) -> Tensor:
    """Summed cross-entropy of softmax(x W^T + b) against y, equal to
    `F.cross_entropy(F.linear(x, weight, bias), y, reduction="sum", label_smoothing=...)`.

    Args:
        x: (N, D) features of real target tokens.
        weight: (V, D) output layer W_s; bias: (V,).
        y: (N,) target ids.
        label_smoothing: eps of torch's smoothed cross-entropy.
        chunk: tokens per chunk; bounds the live logits to (chunk, V).

    Under autocast the plain form runs, so mixed precision keeps torch's own casting rules.
    """
    if torch.is_autocast_enabled(x.device.type):
        return plain_linear_cross_entropy(x, weight, bias, y, label_smoothing)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(x, weight, bias, y, label_smoothing, chunk)
    buffer = x.new_empty(min(chunk, x.size(0)), weight.size(0))
    total = x.new_zeros(())
    for start in range(0, x.size(0), chunk):
        z = _chunk_logits(x[start : start + chunk], weight, bias, buffer)
        total += _chunk_loss(z, y[start : start + chunk], label_smoothing)[0]
    return total
