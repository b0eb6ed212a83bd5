"""Tensors constant over the steps of one teacher-forced pass, whose gradients are formed once.

Teacher forcing runs a decoder one step at a time, and every step multiplies by the same
batch-constant tensors: the attention keys and memory (B, S, D), and weights such as the LSTM's
and W_c. Autograd forms each step's gradient for them in full, g_t^T x_t, and adds it to a
running sum: a pass over the whole tensor per step, bound by memory bandwidth rather than
arithmetic, and, for a weight under autocast, a sum of bfloat16 terms. A `Constant` keeps only
each step's small factors x_t and g_t, and when autograd reaches it, after every step that
used it, forms its gradient in one product over all steps, G^T X.

    memory = constant(enc.memory)                 # once per batch
    context = torch.matmul(weights, memory)       # at each step: a step product
    scores = query @ keys.transpose(-1, -2)       # keys = U_a(memory) is constant too
    gates = F.linear(x, W_ih, b_ih)               # W_ih = constant(weight)

The code that uses a `Constant` is plain torch: its `__torch_function__` sees the products
(`torch.matmul`, `bmm`, `@`, `F.linear`, `torch.lstm_cell`) that take it as their second
operand and runs them as step products; a product of constants only, such as keys projected
from the memory, is a new `Constant`; a transpose is a transposed view of the same one; every
other operation returns a plain tensor. Without gradients a product is torch's own.

A constant weight (2-D, multiplied as x W^T) on CPU has its per-step products, x_t W^T forward
and g_t W backward, go through oneDNN with W and W^T each packed once per pass (nmt.fast.packed),
which runs these 64-row products faster than torch.addmm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from nmt.fast import packed
from nmt.fast.lstm import lstm_update

# oneDNN compiles and keeps a kernel for every new low-precision product shape (nmt.fast.loss):
# a constant's summed product has the steps' rows padded with zeros to a multiple of this, a new
# shape every eighth target length of a 64-sentence batch rather than every one
ROWS = 512
LOW_PRECISION = (torch.bfloat16, torch.float16)


class Stash:
    """The steps' factors of the products by one constant c: (x_t, g_t) of y_t = x_t c and of
    y_t = x_t c^T, kept until c's backward; for a packable weight its packs, W for the forward
    and W^T for the backward, made at first use."""

    def __init__(self, packs: bool) -> None:
        self.factors: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
        self.packs: dict[bool, Tensor] | None = {} if packs else None

    def packed(self, c: Tensor, transposed: bool) -> Tensor:
        """The weight c (N, K) packed for x c^T, or c^T packed for g c."""
        if transposed not in self.packs:
            self.packs[transposed] = packed.reorder(c.t() if transposed else c)
        return self.packs[transposed]


class _Constant(torch.autograd.Function):
    """Identity on c ([B,] N, K); its backward adds the steps' products, each orientation summed
    in one product."""

    @staticmethod
    def forward(ctx, c: Tensor, stash: Stash) -> Tensor:  # noqa: D102
        ctx.stash = stash
        return c.view_as(c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: D102
        for transposed, (xs, gs) in ctx.stash.factors.items():
            if not xs:
                continue
            dim = grad.dim() - 2  # the steps' rows: dim 0 of (rows, K), dim 1 of (B, rows, K)
            X, G = torch.cat(xs, dim), torch.cat(gs, dim)
            if X.dtype in LOW_PRECISION:
                pad = -X.size(dim) % ROWS  # zero rows add nothing to the sum
                X, G = F.pad(X, (0, 0, 0, pad)), F.pad(G, (0, 0, 0, pad))
            # y_t = x_t c^T gives dc = sum_t g_t^T x_t; y_t = x_t c gives dc = sum_t x_t^T g_t
            first, second = (G, X) if transposed else (X, G)
            product_sum = torch.addmm if dim == 0 else torch.baddbmm
            grad = product_sum(grad, first.transpose(-1, -2), second)  # ([B,] N, K)
            xs.clear()
            gs.clear()
        return grad, None


class _StepProduct(torch.autograd.Function):
    """y = x c^T (+ b) or x c, with c's gradient left to its `_Constant` node."""

    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, bias, stash: Stash, transposed: bool):  # noqa: D102
        ctx.stash, ctx.transposed = stash, transposed
        ctx.save_for_backward(x, c)
        if transposed and stash.packs is not None:  # a weight on the packed path: x c^T + b
            return packed.linear(x, (stash.packed(c, transposed=False), bias))
        c = c.transpose(-1, -2) if transposed else c
        return torch.matmul(x, c) if bias is None else torch.addmm(bias, x, c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: D102
        x, c = ctx.saved_tensors
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0] and ctx.transposed and ctx.stash.packs is not None:
            grad_x = packed.linear(grad, (ctx.stash.packed(c, transposed=True), None))  # g c
        elif ctx.needs_input_grad[0]:
            grad_x = torch.matmul(grad, c if ctx.transposed else c.transpose(-1, -2))
        if ctx.needs_input_grad[1]:
            xs, gs = ctx.stash.factors[ctx.transposed]
            xs.append(x)
            gs.append(grad)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, None, grad_bias, None, None


class Constant(Tensor):
    """A tensor that every step of one teacher-forced pass shares (see the module docstring).
    `source` is the tensor as autograd knows it, untransposed; `transposed` says that this view
    is its transpose in the last two dimensions. The handlers below read dtype and dim from
    `source`: on the view each read would go through `__torch_function__` again."""

    stash: Stash
    source: Tensor
    transposed: bool

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func)
        if handler is not None and torch.is_grad_enabled():
            out = handler(*args, **kwargs)
            if out is not NotImplemented:
                return out
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)


def _view(source: Tensor, stash: Stash, transposed: bool) -> Constant:
    view = (source.transpose(-1, -2) if transposed else source).as_subclass(Constant)
    view.stash, view.source, view.transposed = stash, source, transposed
    return view


def constant(c: Tensor) -> Tensor:
    """c (N, K) or (B, N, K) as the steps of one forward pass will share it: the same values,
    its gradient from the step products formed in one product per orientation. Without
    gradients, c itself."""
    if not torch.is_grad_enabled() or not c.requires_grad:
        return c
    stash = Stash(packs=c.dim() == 2 and packed.usable_in_training(c))
    return _view(_Constant.apply(c, stash), stash, transposed=False)


def _fixed(t) -> bool:
    """Whether t is the same at every step: a constant or a parameter (any other tensor may be
    one step's)."""
    return isinstance(t, Constant | torch.nn.Parameter)


def _plain(t: Tensor) -> Tensor:
    if not isinstance(t, Constant):
        return t
    return t.source.transpose(-1, -2) if t.transposed else t.source


def _matmul(x, c, *, out=None):
    """x @ c: a step product where only c is constant; a new constant where both are fixed."""
    if out is not None:
        return NotImplemented
    if _fixed(x) and _fixed(c):
        with torch._C.DisableTorchFunctionSubclass():
            return constant(torch.matmul(_plain(x), _plain(c)))
    if not isinstance(c, Constant) or isinstance(x, Constant):
        return NotImplemented
    return _StepProduct.apply(x.to(c.source.dtype), c.source, None, c.stash, c.transposed)


def _linear(x, weight, bias=None):
    """F.linear, x W^T + b: a step product where only W is constant; a new constant where x and
    W (and b) are fixed, such as keys projected from the memory."""
    if _fixed(x) and _fixed(weight) and (bias is None or _fixed(bias)):
        with torch._C.DisableTorchFunctionSubclass():
            return constant(F.linear(_plain(x), _plain(weight), _plain(bias)))
    if not isinstance(weight, Constant) or isinstance(x, Constant) or weight.transposed:
        return NotImplemented
    rows = x.reshape(-1, x.size(-1)).to(weight.source.dtype)  # (N, K): the steps' rows are dim 0
    y = _StepProduct.apply(rows, weight.source, bias, weight.stash, True)
    return y.view(*x.shape[:-1], y.size(-1))


def _transpose(t, dim0=-2, dim1=-1):
    if not isinstance(t, Constant):
        return NotImplemented
    n = t.source.dim()
    if {dim0 % n, dim1 % n} != {n - 2, n - 1}:
        return NotImplemented
    return _view(t.source, t.stash, not t.transposed)


def _lstm_cell(x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.lstm_cell with constant weights: the two gate products as step products, summed
    in the weights' dtype, and the rest as torch's cell under autocast computes it (the gates'
    nonlinearities in that dtype, the cell state in c's)."""
    h, c = hx
    gates = _gate_product(x, w_ih, b_ih) + _gate_product(h, w_hh, b_hh)  # (B, 4H)
    return lstm_update(gates, c)


def _gate_product(x, weight, bias):
    """F.linear(x, weight, bias), taken straight to `_linear` where it applies."""
    out = _linear(x, weight, bias)
    return F.linear(x, weight, bias) if out is NotImplemented else out


_HANDLERS = {
    torch.matmul: _matmul,
    torch.bmm: _matmul,
    Tensor.matmul: _matmul,
    Tensor.__matmul__: _matmul,
    Tensor.bmm: _matmul,
    F.linear: _linear,
    torch.transpose: _transpose,
    Tensor.transpose: _transpose,
    torch.lstm_cell: _lstm_cell,
}
