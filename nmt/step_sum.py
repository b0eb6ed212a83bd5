"""The gradient of a tensor that every decoder step multiplies by, formed once over all steps.

With input feeding, teacher forcing runs the decoder one step at a time, and every step's
attention multiplies by the same two batch-constant tensors, the keys and the memory (B, S, D).
Autograd forms each step's gradient for them in full, g_t^T x_t, and adds it to a running sum:
two passes over a (B, S, D) tensor per step and tensor, bound by memory bandwidth rather than
arithmetic. Here each step's backward keeps only its small factors x_t (B, T_t, K) and g_t, and
when autograd reaches the shared tensor, which it does after every step that used it, the
gradient is formed in one product over all steps, G^T X.

    memory = shared_over_steps(enc.memory)    # once per batch, autograd's identity
    context = step_bmm(weights, memory)       # at each step: weights @ memory
    scores = step_bmm(query, keys, transpose=True)   # query @ keys^T

`step_bmm` on a tensor that did not come from `shared_over_steps`, or without gradients, is
plain `torch.bmm`, so attention code calls it unconditionally.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _Stash:
    """Each step's factors (x_t, g_t), kept by the steps' backward for the shared tensor's."""

    def __init__(self) -> None:
        self.xs: list[Tensor] = []
        self.gs: list[Tensor] = []


class _Shared(torch.autograd.Function):
    """Identity on c (B, N, K); its backward adds the steps' products, summed in one bmm."""

    @staticmethod
    def forward(ctx, c: Tensor, stash: _Stash, transpose: bool) -> Tensor:  # noqa: D102
        ctx.stash, ctx.transpose = stash, transpose
        return c.view_as(c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: D102
        stash = ctx.stash
        if stash.xs:
            X, G = torch.cat(stash.xs, 1), torch.cat(stash.gs, 1)  # (B, T, K|N), (B, T, N|K)
            # y_t = x_t c^T gives dc = sum_t g_t^T x_t; y_t = x_t c gives dc = sum_t x_t^T g_t
            first, second = (G, X) if ctx.transpose else (X, G)
            grad = torch.baddbmm(grad, first.transpose(1, 2), second)  # (B, N, K)
            stash.xs, stash.gs = [], []
        return grad, None, None


class _StepBmm(torch.autograd.Function):
    """y = x c^T or x c, with c's gradient left to its `_Shared` node."""

    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, stash: _Stash, transpose: bool) -> Tensor:  # noqa: D102
        ctx.stash, ctx.transpose = stash, transpose
        ctx.save_for_backward(x, c)
        return torch.bmm(x, c.transpose(1, 2) if transpose else c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: D102
        x, c = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad, c if ctx.transpose else c.transpose(1, 2))
        if ctx.needs_input_grad[1]:
            ctx.stash.xs.append(x)
            ctx.stash.gs.append(grad)
        return grad_x, None, None, None


def shared_over_steps(c: Tensor, transpose: bool = False) -> Tensor:
    """c (B, N, K) as the steps of one forward pass will share it: the same values, its gradient
    from `step_bmm` formed in one product. `transpose` says how the steps use it (`step_bmm`'s)."""
    stash = _Stash()
    shared = _Shared.apply(c, stash, transpose)
    shared.step_stash = (stash, transpose)
    return shared


def step_bmm(x: Tensor, c: Tensor, transpose: bool = False) -> Tensor:
    """x (B, T, K) @ c (B, K, N), or x (B, T, K) @ c^T for c (B, N, K) with `transpose`:
    torch.bmm, with c's gradient deferred when c comes from `shared_over_steps` used the same
    way."""
    shared = getattr(c, "step_stash", None)
    if shared is None or shared[1] != transpose or not torch.is_grad_enabled():
        return torch.bmm(x, c.transpose(1, 2) if transpose else c)
    return _StepBmm.apply(x, c, shared[0], transpose)
