"""Per-step attention products whose gradient for the per-batch operand is summed once.

At every decoder step attention multiplies a per-batch tensor X (B, S, D), the keys or the
memory, by per-step vectors: scores s_t = X q_t (B, S) and a context c_t = X^T a_t (B, D).
Autograd forms dL/dX at every step as a full (B, S, D) outer product and adds it into X's
gradient: two memory-bound passes over X per product and step. The sum over steps is a single
batched product, sum_t g_t q_t^T = G^T Q with G (B, T, S) and Q (B, T, D), so here every step
only records its two small factors, and a gate placed on X once per batch forms the sum in one
bmm when autograd reaches it, which is after the backward of every step that used X.

    keys = defer_step_gradients(keys)          # once per batch, before the decoder loop
    scores = step_scores(query, keys)          # inside attention, every step
    context = step_contexts(weights, memory)

Tensors that did not pass through the gate (decoding, whole-sequence attention) take the plain
`torch.bmm`. A graph built this way supports one backward pass (no retain_graph reuse).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class StepFactors:
    """The recorded factors of X's gradient: sum_i left_i^T right_i, each left (B, S),
    right (B, D)."""

    def __init__(self) -> None:
        self.left: list[Tensor] = []
        self.right: list[Tensor] = []


class _Gate(torch.autograd.Function):
    """Identity on X (B, S, D) whose backward adds the recorded per-step gradients."""

    @staticmethod
    def forward(ctx, x, factors):  # noqa: D102
        ctx.set_materialize_grads(False)
        ctx.factors = factors
        return x.view_as(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: D102
        factors = ctx.factors
        if factors.left:
            left = torch.stack(factors.left, dim=1)  # (B, T, S)
            right = torch.stack(factors.right, dim=1)  # (B, T, D)
            summed = torch.bmm(left.transpose(1, 2), right)  # (B, S, D)
            grad = summed if grad is None else grad + summed
            factors.left.clear()
            factors.right.clear()
        return grad, None


class _Scores(torch.autograd.Function):
    """s = X q: X (B, S, D), q (B, D) -> (B, S); dL/dX = g q^T is recorded, not formed."""

    @staticmethod
    def forward(ctx, x, q, factors):  # noqa: D102
        ctx.save_for_backward(x, q)
        ctx.factors = factors
        return torch.bmm(x, q.unsqueeze(2)).squeeze(2)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # noqa: D102
        x, q = ctx.saved_tensors
        ctx.factors.left.append(g)
        ctx.factors.right.append(q)
        return None, torch.bmm(g.unsqueeze(1), x).squeeze(1), None  # dL/dq (B, D)


class _Contexts(torch.autograd.Function):
    """c = X^T a: X (B, S, D), a (B, S) -> (B, D); dL/dX = a g^T is recorded, not formed."""

    @staticmethod
    def forward(ctx, x, a, factors):  # noqa: D102
        ctx.save_for_backward(x, a)
        ctx.factors = factors
        return torch.bmm(a.unsqueeze(1), x).squeeze(1)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # noqa: D102
        x, a = ctx.saved_tensors
        ctx.factors.left.append(a)
        ctx.factors.right.append(g)
        return None, torch.bmm(x, g.unsqueeze(2)).squeeze(2), None  # dL/da (B, S)


def defer_step_gradients(x: Tensor) -> Tensor:
    """X (B, S, D) -> the same values, gated: per-step products with it record their gradient
    factors and the gate sums them once. Identity when no gradient is being recorded."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x
    factors = StepFactors()
    gated = _Gate.apply(x, factors)
    gated.step_factors = factors
    return gated


def step_scores(query: Tensor, keys: Tensor) -> Tensor:
    """query (B, T, D) x keys (B, S, D) -> scores (B, T, S)."""
    factors = getattr(keys, "step_factors", None)
    if factors is None or query.size(1) != 1:
        return torch.bmm(query, keys.transpose(1, 2))
    return _Scores.apply(keys, query.squeeze(1), factors).unsqueeze(1)


def step_contexts(weights: Tensor, memory: Tensor) -> Tensor:
    """weights (B, T, S) x memory (B, S, D) -> contexts (B, T, D)."""
    factors = getattr(memory, "step_factors", None)
    if factors is None or weights.size(1) != 1:
        return torch.bmm(weights, memory)
    return _Contexts.apply(memory, weights.squeeze(1), factors).unsqueeze(1)
