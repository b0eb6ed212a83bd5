"""The gradient of a tensor that every decoder step multiplies by, formed once over all steps.

With input feeding, teacher forcing runs the decoder one step at a time, and every step
multiplies by the same batch-constant tensors: the attention keys and memory (B, S, D), and the
weights of the LSTM and W_c. The encoder's `lstm_steps` does the same with its recurrent
weights (dirs, H, 4H). Autograd forms each step's gradient for them in full, g_t^T x_t,
and adds it to a running sum: a pass over the whole tensor per step, bound by memory bandwidth
rather than arithmetic, and, for a weight under autocast, a sum of bfloat16 terms. Here each
step's backward keeps only its small factors x_t and g_t, and when autograd reaches the shared
tensor, which it does after every step that used it, the gradient is formed in one product
over all steps, G^T X.

    memory = shared_over_steps(enc.memory)         # once per batch, autograd's identity
    context = step_matmul(weights, memory)         # at each step: weights @ memory
    scores = step_matmul(query, keys, transpose=True)   # query @ keys^T
    gates = step_linear(x, W_ih, b_ih)             # x W_ih^T + b_ih, W_ih shared (transpose)

`step_matmul` and `step_linear` on a tensor that did not come from `shared_over_steps`, or
without gradients, are plain `torch.matmul` and `F.linear`, so callers use them unconditionally.

A shared weight is also constant over the pass, so on CPU its per-step products, x_t W^T
forward and g_t W backward, go through oneDNN with W and W^T each packed once per pass
(nmt.fast.packed), which runs these 64-row products faster than torch.addmm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from nmt.fast import packed

# oneDNN compiles and keeps a kernel for every new low-precision product shape (nmt.fast.loss.ROWS):
# a weight's summed product has the steps' rows padded with zeros to a multiple of this, a new
# shape every eighth target length of a 64-sentence batch rather than every one
ROWS = 512
LOW_PRECISION = (torch.bfloat16, torch.float16)


class _Stash:
    """Each step's factors (x_t, g_t), kept by the steps' backward for the shared tensor's, and
    for a weight on the packed path its packs: W for the forward, W^T for the backward."""

    def __init__(self, packs: bool) -> None:
        self.xs: list[Tensor] = []
        self.gs: list[Tensor] = []
        self.packs: dict[bool, Tensor] | None = {} if packs else None

    def packed(self, c: Tensor, transposed: bool) -> Tensor:
        """The weight c (N, K) packed for x c^T, or c^T packed for g c; made at first use."""
        if transposed not in self.packs:
            self.packs[transposed] = packed.reorder(c.t() if transposed else c)
        return self.packs[transposed]


class _Shared(torch.autograd.Function):
    """Identity on c ([B,] N, K); its backward adds the steps' products, summed in one product."""

    @staticmethod
    def forward(ctx, c: Tensor, stash: _Stash, transpose: bool) -> Tensor:  # noqa: D102
        ctx.stash, ctx.transpose = stash, transpose
        return c.view_as(c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: D102
        stash = ctx.stash
        if stash.xs:
            dim = grad.dim() - 2  # the steps' rows: dim 0 of (rows, K), dim 1 of (B, rows, K)
            X, G = torch.cat(stash.xs, dim), torch.cat(stash.gs, dim)
            if X.dtype in LOW_PRECISION:
                pad = -X.size(dim) % ROWS  # zero rows add nothing to the sum
                X, G = F.pad(X, (0, 0, 0, pad)), F.pad(G, (0, 0, 0, pad))
            # y_t = x_t c^T gives dc = sum_t g_t^T x_t; y_t = x_t c gives dc = sum_t x_t^T g_t
            first, second = (G, X) if ctx.transpose else (X, G)
            product_sum = torch.addmm if dim == 0 else torch.baddbmm
            grad = product_sum(grad, first.transpose(-1, -2), second)  # ([B,] N, K)
            stash.xs, stash.gs = [], []
        return grad, None, None


class _StepProduct(torch.autograd.Function):
    """y = x c^T (+ b) or x c, with c's gradient left to its `_Shared` node."""

    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, bias, stash: _Stash, transpose: bool):  # noqa: D102
        ctx.stash, ctx.transpose = stash, transpose
        ctx.save_for_backward(x, c)
        if stash.packs is not None:  # a weight on the packed path: x c^T + b
            return packed.linear(x, (stash.packed(c, transposed=False), bias))
        c = c.transpose(-1, -2) if transpose else c
        return torch.matmul(x, c) if bias is None else torch.addmm(bias, x, c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: D102
        x, c = ctx.saved_tensors
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0] and ctx.stash.packs is not None:
            grad_x = packed.linear(grad, (ctx.stash.packed(c, transposed=True), None))  # g c
        elif ctx.needs_input_grad[0]:
            grad_x = torch.matmul(grad, c if ctx.transpose else c.transpose(-1, -2))
        if ctx.needs_input_grad[1]:
            ctx.stash.xs.append(x)
            ctx.stash.gs.append(grad)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, None, grad_bias, None, None


def shared_over_steps(c: Tensor, transpose: bool = False) -> Tensor:
    """c (N, K) or (B, N, K) as the steps of one forward pass will share it: the same values,
    its gradient from `step_matmul` / `step_linear` formed in one product. `transpose` says how
    the steps use it (`step_matmul`'s; True for a weight)."""
    stash = _Stash(packs=transpose and c.dim() == 2 and packed.usable_in_training(c))
    shared = _Shared.apply(c, stash, transpose)
    shared.step_stash = (stash, transpose)
    return shared


def _stash(c: Tensor, transpose: bool) -> _Stash | None:
    shared = getattr(c, "step_stash", None)
    if shared is None or shared[1] != transpose or not torch.is_grad_enabled():
        return None
    return shared[0]


def step_matmul(x: Tensor, c: Tensor, transpose: bool = False) -> Tensor:
    """x (B, T, K) @ c (B, K, N), or x @ c^T for c (B, N, K) with `transpose`: torch's product,
    with c's gradient deferred when c comes from `shared_over_steps` used the same way."""
    stash = _stash(c, transpose)
    if stash is None:
        return torch.matmul(x, c.transpose(-1, -2) if transpose else c)
    return _StepProduct.apply(x, c, None, stash, transpose)


def step_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear: x (B, K) W^T + b for W (N, K), b (N,), with W's gradient deferred when W comes
    from `shared_over_steps(W, transpose=True)`. x is cast to W's dtype there, as autocast
    would (the shared weight is cast once per batch, see nmt.models.decoder)."""
    stash = _stash(weight, True)
    if stash is None:
        return F.linear(x, weight, bias)
    return _StepProduct.apply(x.to(weight.dtype), weight, bias, stash, True)
