"""The output layer and token cross-entropy in one pass over chunks of tokens.

The plain form, `F.cross_entropy(generator(features), targets)`, keeps the (N, V) logits, their
log-softmax and a dense (N, V) gradient alive between forward and backward: for a batch of 3,000
target tokens and V = 8,000 that is three ~100 MB buffers, fresh memory at every step. Here each
chunk of tokens computes its logits, its loss and at once the gradients of W_s, b_s and the
features (the gradient of a summed cross-entropy is softmax(z) - onehot(y), known in the
forward pass), so only a (chunk, V) buffer is ever alive. The matrix products are the same three
as autograd's; the log-softmax and its backward become one softmax per chunk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt.devices import product_dtype
from nmt.fast import packed

CHUNK = 512  # tokens per chunk: (512, 8000) float32 logits are 16 MB
# Under autocast the products go through oneDNN, which compiles and keeps a kernel for every new
# shape (about 0.5 MB each, up to 1,024 of them): a chunk's rows padded with zeros to a multiple
# of ROWS give the loss at most CHUNK / ROWS shapes instead of a new one at almost every batch.
ROWS = 64


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


def _chunk_loss_and_grad(z: Tensor, y: Tensor, label_smoothing: float) -> tuple[Tensor, Tensor]:
    """The summed smoothed cross-entropy of logits z (n, V) against y (n,), and its gradient
    dloss/dz = softmax(z) - (1 - eps) onehot(y) - eps / V (n, V), a new tensor; z is left as is.

    torch's softmax makes its passes over each row while the row is in cache, where logsumexp,
    then subtracting it and exponentiating, each pass over the whole (n, V) chunk. The
    logsumexp is read back from the softmax: at a row's largest logit m the softmax is
    exp(0) / sum exp(z - m), never below 1 / V, so lse = m - log(max softmax)."""
    m = z.amax(dim=-1)  # (n,)
    z_y = z.gather(1, y.unsqueeze(1)).squeeze(1)  # (n,)
    mean = z.mean(dim=-1) if label_smoothing else None  # (n,)
    grad = torch.softmax(z, dim=-1)  # (n, V)
    lse = m - grad.amax(dim=-1).log()  # (n,)
    loss = (lse - z_y).sum()
    if label_smoothing:
        loss = (1 - label_smoothing) * loss + label_smoothing * (lse - mean).sum()
        grad.sub_(label_smoothing / z.size(1))
    rows = torch.arange(z.size(0), device=z.device)
    grad[rows, y] -= 1 - label_smoothing
    return loss, grad


class _LinearCrossEntropy(torch.autograd.Function):
    """loss = sum_i CE(x_i W^T + b, y_i); gradients computed in forward, scaled in backward.

    The three products run in `dtype` (W's own, or autocast's bfloat16/float16); the softmax and
    the gradients of W and b stay in W's dtype, summed over chunks."""

    @staticmethod
    def forward(ctx, x, weight, bias, y, label_smoothing, chunk, dtype):  # noqa: D102 (see class)
        with torch.autocast(x.device.type, enabled=False):
            grads = _fused_chunks(x, weight, bias, y, label_smoothing, chunk, dtype)
        total, grad_x, grad_w, grad_b = grads
        ctx.save_for_backward(grad_x, grad_w, grad_b)
        return total

    @staticmethod
    def backward(ctx, grad_loss):  # noqa: D102
        grad_x, grad_w, grad_b = ctx.saved_tensors
        return grad_x * grad_loss, grad_w * grad_loss, grad_b * grad_loss, None, None, None, None


def _fused_chunks(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    y: Tensor,
    label_smoothing: float,
    chunk: int,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The summed loss and its gradients with respect to x (N, D), W (V, D) and b (V,)."""
    low = dtype != weight.dtype  # autocast: products in bf16/fp16, the rest in W's dtype
    w, b = weight.to(dtype), bias.to(dtype)  # (V, D), (V,): one cast per batch
    grad_x = torch.empty_like(x)
    grad_w = torch.zeros_like(weight)
    grad_b = torch.zeros_like(bias)
    size = min(chunk, x.size(0))
    size += -size % ROWS if low else 0
    logits, times_w = _products_by_w(w, b, size)
    total = weight.new_zeros(())
    for start in range(0, x.size(0), chunk):
        x_c, y_c = x[start : start + chunk].to(dtype), y[start : start + chunk]  # (n, D), (n,)
        n = x_c.size(0)
        if low:
            x_c = F.pad(x_c, (0, 0, 0, -n % ROWS))  # (m, D): zero rows up to a multiple of ROWS
        z = logits(x_c)  # (m, V)
        z = z.to(weight.dtype) if low else z  # the softmax in W's dtype
        loss, grad = _chunk_loss_and_grad(z[:n], y_c, label_smoothing)  # (n, V)
        del z  # free the chunk's logits before its gradient's products
        total += loss
        grad_b += grad.sum(dim=0)  # (V,)
        if low:
            padded = grad.new_zeros(x_c.size(0), grad.size(1), dtype=dtype)  # (m, V)
            padded[:n] = grad  # padding rows carry no gradient
            grad = padded
            grad_w += torch.mm(grad.t(), x_c)  # (V, D), summed in float32
        else:
            grad_w.addmm_(grad.t(), x_c)
        grad_x[start : start + n] = times_w(grad)[:n]  # (n, D)
        del grad  # before the next chunk's logits are made
    return total, grad_x, grad_w, grad_b


def _products_by_w(
    w: Tensor, b: Tensor, rows: int
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """The chunks' two products by the output layer, z = x W^T + b and g W, for chunks of at
    most `rows` rows: on CPU through oneDNN with W and W^T packed once per batch (nmt.fast.packed),
    elsewhere torch's, the logits written into one reused (rows, V) buffer."""
    if packed.usable_in_training(w):
        w_packed, w_t_packed = packed.reorder(w), packed.reorder(w.t())

        def logits(x: Tensor) -> Tensor:
            return packed.linear(x, (w_packed, b))

        def times_w(g: Tensor) -> Tensor:
            return packed.linear(g, (w_t_packed, None))

        return logits, times_w
    buffer = w.new_empty(rows, w.size(0))  # (rows, V)

    def buffered_logits(x: Tensor) -> Tensor:
        return _chunk_logits(x, w, b, buffer)

    return buffered_logits, functools.partial(torch.mm, mat2=w)


def plain_linear_cross_entropy(
    x: Tensor, weight: Tensor, bias: Tensor, y: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """The same sum through autograd with the whole (N, V) logits: used under autocast."""
    logits = F.linear(x, weight, bias)  # (N, V)
    return F.cross_entropy(logits, y, reduction="sum", label_smoothing=label_smoothing)


def linear_cross_entropy(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    y: Tensor,
    label_smoothing: float,
    *,
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

    Under autocast the products run in autocast's dtype, as torch's own linear would, and the
    softmax in float32, as its cross-entropy would; without gradients autocast takes the plain
    form.
    """
    dtype = product_dtype(x)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(x, weight, bias, y, label_smoothing, chunk, dtype)
    if dtype != x.dtype:  # under autocast
        return plain_linear_cross_entropy(x, weight, bias, y, label_smoothing)
    buffer = x.new_empty(min(chunk, x.size(0)), weight.size(0))
    total = x.new_zeros(())
    for start in range(0, x.size(0), chunk):
        z = _chunk_logits(x[start : start + chunk], weight, bias, buffer)
        total += _chunk_loss(z, y[start : start + chunk], label_smoothing)[0]
    return total
