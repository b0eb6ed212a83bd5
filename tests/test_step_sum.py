import pytest
import torch

import nmt.fast.packed
import nmt.fast.step_sum
import nmt.models.decoder
import nmt.models.encoder
from nmt.data.batching import make_batch
from nmt.fast.step_sum import shared_over_steps, step_linear, step_matmul
from tests.test_model import IDS, MODELS, build, toy_batch


def run_steps(c, x0, transpose, share):
    """A recurrence through products by a square c (B, K, K) that also uses c directly once."""
    shared = shared_over_steps(c, transpose) if share else c
    x, outputs = x0, []
    for _ in range(4):
        y = step_matmul(x, shared, transpose)  # (B, 1, K)
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
        shared = shared_over_steps(W, transpose=True) if share else W
        x, loss = x0, (W * W).sum()  # a direct use of W besides the steps
        for _ in range(4):
            x = torch.tanh(step_linear(x, shared, b))  # (3, 6)
            loss = loss + (x**2).sum()
        grads[share] = (loss.detach(), *torch.autograd.grad(loss, inputs))
    for got, want in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_step_matmul_without_gradients_or_sharing_is_bmm():
    x, c = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert torch.equal(step_matmul(x, c), torch.bmm(x, c))
    shared = shared_over_steps(c.transpose(1, 2).contiguous(), transpose=True)
    with torch.no_grad():
        assert torch.equal(step_matmul(x, shared, transpose=True), torch.bmm(x, c))


def loss_and_grads(model, batch) -> list[torch.Tensor]:
    model.zero_grad()
    loss = model.loss(batch, 0.0)
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_gradients_equal_per_step_autograd(overrides, monkeypatch):
    """Every model's loss and gradients are those of plain per-step autograd, in float64."""
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, range(len(src)))
    model = build(*overrides).double()

    deferred = loss_and_grads(model, batch)
    for module in (nmt.models.decoder, nmt.models.encoder):
        monkeypatch.setattr(module, "shared_over_steps", lambda c, transpose=False: c)
    plain = loss_and_grads(model, batch)
    for got, want in zip(deferred, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


needs_packed = pytest.mark.skipif(
    not nmt.fast.packed.available(), reason="this torch build lacks oneDNN's packed linear"
)


def packed_recurrence(W, b, x0, dtype):
    """Four steps through a shared (6, 6) weight cast to `dtype`, as the decoder shares its
    weights under autocast -> loss, gradients of W, b, x0."""
    shared = shared_over_steps(W.to(dtype), transpose=True)
    x, loss = x0, (W * W).sum()
    for _ in range(4):
        x = torch.tanh(step_linear(x, shared, b.to(dtype)).float())  # (3, 6)
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
    with nmt.fast.packed.enabled(False):
        plain = packed_recurrence(W, b, x0, dtype)
    assert len(reorders) == 2
    # float32: torch's default tolerance, the two kernels' rounding; bfloat16: its 8-bit mantissa
    tolerance = {} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    for got, want in zip(fast, plain, strict=True):
        torch.testing.assert_close(got, want, **tolerance)


@needs_packed
@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_on_packed_weights_equals_torchs_products(overrides):
    """Every model's float32 loss and gradients are the same with the steps' products on packed
    weights as on torch's."""
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, range(len(src)))
    model = build(*overrides)

    fast = loss_and_grads(model, batch)
    with nmt.fast.packed.enabled(False):
        plain = loss_and_grads(model, batch)
    for got, want in zip(fast, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
