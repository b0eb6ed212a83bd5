"""The chunked output layer + cross-entropy equals the plain autograd form."""

import pytest
import torch
import torch.nn.functional as F

from nmt.loss import linear_cross_entropy


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
