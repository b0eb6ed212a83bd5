"""The chunked output layer + cross-entropy equals the plain autograd form."""

import pytest
import torch
import torch.nn.functional as F
from toys import CPU, assert_close_in_bfloat16, loss_and_grads

import nmt.fast.packed
from nmt.devices import autocast
from nmt.fast.loss import linear_cross_entropy, plain_linear_cross_entropy


def plain(x, weight, bias, y, eps):
    logits = F.linear(x, weight, bias)
    return F.cross_entropy(logits, y, reduction="sum", label_smoothing=eps)


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("chunk", [4, 7, 1024])
def test_loss_and_gradients_equal_plain(eps, chunk):
    torch.manual_seed(0)
    N, D, V = 23, 6, 11
    x = torch.randn(N, D, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(V, D, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(V, dtype=torch.float64, requires_grad=True)
    y = torch.randint(V, (N,))
    scale = 0.37  # the trainer divides by the token count before backward

    fused = linear_cross_entropy(x, weight, bias, y, eps, chunk=chunk)
    (fused * scale).backward()
    fused_grads = [t.grad.clone() for t in (x, weight, bias)]
    for t in (x, weight, bias):
        t.grad = None
    reference = plain(x, weight, bias, y, eps)
    (reference * scale).backward()

    torch.testing.assert_close(fused, reference)
    for got, want in zip(fused_grads, (x.grad, weight.grad, bias.grad), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("on_packed", [True, False])
def test_float32_loss_and_gradients_equal_plain_on_packed_or_torchs_products(
    on_packed, monkeypatch
):
    """In float32 on CPU the chunks multiply by W and W^T packed once per batch (nmt.fast.packed);
    where that path is not usable, torch's products into a reused buffer."""
    if on_packed and not nmt.fast.packed.available():
        pytest.skip("this torch build lacks oneDNN's packed linear")
    reorders = []
    reorder = nmt.fast.packed.reorder
    monkeypatch.setattr(
        nmt.fast.packed, "reorder", lambda w: reorders.append(w.shape) or reorder(w)
    )
    torch.manual_seed(3)
    N, D, V = 70, 16, 50
    x = torch.randn(N, D, requires_grad=True)
    weight = torch.randn(V, D, requires_grad=True)
    bias = torch.randn(V, requires_grad=True)
    y = torch.randint(V, (N,))
    if not on_packed:
        monkeypatch.setattr(nmt.fast.packed, "usable_in_training", lambda w: False)
    fused = linear_cross_entropy(x, weight, bias, y, 0.1, chunk=32)  # chunks of 32, 32, 6
    assert reorders == ([(V, D), (D, V)] if on_packed else [])
    got = (fused, *torch.autograd.grad(fused, (x, weight, bias)))
    reference = plain(x, weight, bias, y, 0.1)
    want = (reference, *torch.autograd.grad(reference, (x, weight, bias)))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_without_gradients_equals_plain():
    torch.manual_seed(1)
    x, weight, bias = torch.randn(9, 4), torch.randn(5, 4), torch.randn(5)
    y = torch.randint(5, (9,))
    with torch.no_grad():
        torch.testing.assert_close(
            linear_cross_entropy(x, weight, bias, y, 0.1, chunk=4), plain(x, weight, bias, y, 0.1)
        )


def test_gradcheck():
    torch.manual_seed(2)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(4, (5,))
    assert torch.autograd.gradcheck(
        lambda a, w, b: linear_cross_entropy(a, w, b, y, 0.1, chunk=2), (x, weight, bias)
    )


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_float32_loss_where_the_target_probability_underflows(eps):
    """The logsumexp is read back from the softmax at each row's largest logit, never from the
    target's probability, so a target whose softmax underflows to 0 in float32 still has its
    finite loss."""
    torch.manual_seed(4)
    N, D, V = 6, 4, 9
    x = torch.randn(N, D)
    x[0] *= 80.0  # logits hundreds apart: some probabilities are exactly 0 in float32
    weight = torch.randn(V, D, requires_grad=True)
    bias = torch.randn(V, requires_grad=True)
    y = (x[0] @ weight.detach().t()).argmin().repeat(N)  # row 0's least likely word
    assert torch.softmax(x[0] @ weight.detach().t() + bias.detach(), -1)[y[0]] == 0
    x.requires_grad_()
    fused = linear_cross_entropy(x, weight, bias, y, eps, chunk=4)
    reference = plain(x, weight, bias, y, eps)
    assert torch.isfinite(fused)
    torch.testing.assert_close(fused, reference)
    got = torch.autograd.grad(fused, (x, weight, bias))
    want = torch.autograd.grad(reference, (x, weight, bias))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_fused_loss_under_autocast_matches_torchs_own_autocast():
    torch.manual_seed(0)
    N, D, V = 37, 16, 50
    x = torch.randn(N, D, requires_grad=True)
    weight = (0.3 * torch.randn(V, D)).requires_grad_()
    bias = torch.randn(V, requires_grad=True)
    y = torch.randint(V, (N,))
    tensors = (x, weight, bias)

    def under_autocast(f):
        with autocast("bfloat16", CPU):
            return f()

    fused = loss_and_grads(
        lambda: under_autocast(lambda: linear_cross_entropy(x, weight, bias, y, 0.1, chunk=8)),
        tensors,
    )
    plain = loss_and_grads(
        lambda: under_autocast(lambda: plain_linear_cross_entropy(x, weight, bias, y, 0.1)),
        tensors,
    )
    exact = loss_and_grads(lambda: linear_cross_entropy(x, weight, bias, y, 0.1), tensors)

    assert fused[0].dtype == torch.float32
    assert [g.dtype for g in fused[1]] == [torch.float32] * 3
    assert fused[0] != exact[0]  # the logits did come from bfloat16 products
    for got, want in ((fused, plain), (fused, exact)):
        assert_close_in_bfloat16(got[0], want[0])
        for g, w in zip(got[1], want[1], strict=True):
            assert_close_in_bfloat16(g, w)
