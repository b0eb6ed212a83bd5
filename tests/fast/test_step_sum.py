"""Constants over the steps (nmt/fast/step_sum.py) against plain autograd, and the fast layer's
teacher forcing against the reference models'."""

import copy

import pytest
import torch
import torch.nn.functional as F
from toys import CPU, IDS, MODELS, assert_close_in_bfloat16, build, toy_batch

import nmt.fast.packed
import nmt.fast.step_sum
from nmt.data.batching import make_batch
from nmt.devices import autocast
from nmt.fast import accelerate
from nmt.fast.step_sum import Constant, constant


def run_steps(c, x0, transpose, share):
    """A recurrence through products by a square c (B, K, K) that also uses c directly once."""
    shared = constant(c) if share else c
    x, outputs = x0, []
    for _ in range(4):
        y = torch.matmul(x, shared.transpose(1, 2) if transpose else shared)  # (B, 1, K)
        x = torch.tanh(y)
        outputs.append(y)
    direct = (shared * shared).sum()
    return (torch.cat(outputs, 1) ** 2).sum() + direct


@pytest.mark.parametrize(("transpose", "padded"), [(True, False), (False, False), (False, True)])
def test_step_matmul_gradients_equal_torchs(transpose, padded, monkeypatch):
    if padded:  # the zero rows that bound bfloat16 shapes, here in float64
        monkeypatch.setattr(nmt.fast.step_sum, "LOW_PRECISION", (torch.float64,))
    g = torch.Generator().manual_seed(0)
    c = torch.randn(3, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
    x0 = torch.randn(3, 1, 5, dtype=torch.float64, generator=g, requires_grad=True)
    grads = {}
    for share in (False, True):
        loss = run_steps(c, x0, transpose, share)
        grads[share] = (loss.detach(), *torch.autograd.grad(loss, (c, x0)))
    for got, want in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("bias", "padded"), [(True, False), (False, False), (True, True)])
def test_step_linear_gradients_equal_torchs(bias, padded, monkeypatch):
    if padded:  # the zero rows that bound bfloat16 shapes, here in float64
        monkeypatch.setattr(nmt.fast.step_sum, "LOW_PRECISION", (torch.float64,))
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 6, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, generator=g, requires_grad=True) if bias else None
    x0 = torch.randn(3, 6, dtype=torch.float64, generator=g, requires_grad=True)
    inputs = (W, x0) if b is None else (W, b, x0)
    grads = {}
    for share in (False, True):
        shared = constant(W) if share else W
        x, loss = x0, (W * W).sum()  # a direct use of W besides the steps
        for _ in range(4):
            x = torch.tanh(F.linear(x, shared, b))  # (3, 6)
            loss = loss + (x**2).sum()
        grads[share] = (loss.detach(), *torch.autograd.grad(loss, inputs))
    for got, want in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_constants_defer_the_steps_gradients_and_stay_out_of_other_results():
    """Products by a constant keep their factors for one summed product; a product of
    constants is a constant; a transpose is a view of the same one; anything else is plain."""
    memory = torch.randn(2, 5, 4, requires_grad=True)
    W = torch.nn.Parameter(torch.randn(4, 4))
    shared = constant(memory)
    keys = F.linear(shared, W)  # (2, 5, 4), projected from the memory once
    assert isinstance(keys, Constant) and keys.stash is not shared.stash
    query = torch.randn(2, 1, 4, requires_grad=True)
    scores = query @ keys.transpose(1, 2)  # (2, 1, 5)
    context = torch.matmul(torch.softmax(scores, -1), shared)  # (2, 1, 4)
    assert type(scores) is torch.Tensor and type(context) is torch.Tensor
    assert type(shared + 1) is torch.Tensor
    step_products = [type(y.grad_fn).__name__ for y in (scores, context)]
    assert step_products == ["_StepProductBackward"] * 2


def test_without_gradients_a_constant_is_the_tensor_itself():
    x, c = torch.randn(2, 3, 4), torch.randn(2, 4, 5, requires_grad=True)
    with torch.no_grad():
        assert constant(c) is c
    assert constant(c.detach()) is not None and torch.equal(
        torch.bmm(x, constant(c)), torch.bmm(x, c)
    )


def loss_and_parameter_grads(model, batch) -> list[torch.Tensor]:
    model.zero_grad()
    loss = model.loss(batch, 0.0)
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_gradients_equal_the_reference_models(overrides):
    """Every model's loss and gradients with the fast layer are the reference's, in float64."""
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, range(len(src)))
    model = build(*overrides).double()
    fast = accelerate(copy.deepcopy(model))
    for got, want in zip(
        loss_and_parameter_grads(fast, batch), loss_and_parameter_grads(model, batch), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


needs_packed = pytest.mark.skipif(
    not nmt.fast.packed.available(), reason="this torch build lacks oneDNN's packed linear"
)


def packed_recurrence(W, b, x0, dtype, packs=True):
    """Four steps through a shared (6, 6) weight cast to `dtype`, as the decoder shares its
    weights under autocast -> loss, gradients of W, b, x0."""
    shared = constant(W.to(dtype)) if packs else W.to(dtype)
    x, loss = x0, (W * W).sum()
    for _ in range(4):
        x = torch.tanh(F.linear(x.to(dtype), shared, b.to(dtype)).float())  # (3, 6)
        loss = loss + (x**2).sum()
    return (loss.detach(), *torch.autograd.grad(loss, (W, b, x0)))


@needs_packed
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_shared_weight_is_packed_once_per_pass_and_its_products_equal_torchs(dtype, monkeypatch):
    if not nmt.fast.packed.available(dtype):
        pytest.skip(f"no packed {dtype} products on this CPU")
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 6, generator=g, requires_grad=True)
    b = torch.randn(6, generator=g, requires_grad=True)
    x0 = torch.randn(3, 6, generator=g, requires_grad=True)
    reorders = []
    reorder = nmt.fast.packed.reorder
    monkeypatch.setattr(
        nmt.fast.packed, "reorder", lambda w: reorders.append(w.shape) or reorder(w)
    )
    fast = packed_recurrence(W, b, x0, dtype)
    assert len(reorders) == 2  # W for the four forward products, W^T for the four backward
    plain = packed_recurrence(W, b, x0, dtype, packs=False)
    assert len(reorders) == 2
    # float32: torch's default tolerance, the two kernels' rounding; bfloat16: its 8-bit mantissa
    tolerance = {} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    for got, want in zip(fast, plain, strict=True):
        torch.testing.assert_close(got, want, **tolerance)


@needs_packed
@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_on_packed_weights_equals_the_reference(overrides):
    """Every model's float32 loss and gradients are the same with the fast layer (the steps'
    products on packed weights, the chunked loss) as with the reference's torch products."""
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, range(len(src)))
    model = build(*overrides)
    fast = accelerate(copy.deepcopy(model))
    for got, want in zip(
        loss_and_parameter_grads(fast, batch), loss_and_parameter_grads(model, batch), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_an_lstm_cell_on_bfloat16_constant_weights_keeps_a_float32_state():
    """Teacher forcing's cell with the weights cast once to bfloat16 (nmt.fast.models): the gate
    products in bfloat16, the state in float32, close to torch's float32 cell."""
    torch.manual_seed(1)
    B, n_in, H = 3, 5, 4
    x, h, c = torch.randn(B, n_in), torch.randn(B, H), torch.randn(B, H)
    weights = [
        torch.randn(4 * H, n_in, requires_grad=True),
        torch.randn(4 * H, H, requires_grad=True),
        torch.randn(4 * H, requires_grad=True),
        torch.randn(4 * H, requires_grad=True),
    ]
    want_h, want_c = torch.lstm_cell(x, (h, c), *weights)
    # constant float32 weights: the same arithmetic as torch's cell
    shared = [constant(w) if w.dim() == 2 else w for w in weights]
    got_h, got_c = torch.lstm_cell(x, (h, c), *shared)
    torch.testing.assert_close(got_h, want_h)
    torch.testing.assert_close(got_c, want_c)
    low = [w.to(torch.bfloat16) for w in weights]
    with autocast("bfloat16", CPU):
        shared = [constant(w) if w.dim() == 2 else w for w in low]
        low_h, low_c = torch.lstm_cell(x, (h, c), *shared)
    assert low_h.dtype == low_c.dtype == torch.float32
    assert not torch.equal(low_c, want_c)
    assert_close_in_bfloat16(low_h, want_h)
    assert_close_in_bfloat16(low_c, want_c)
