import pytest
import torch

import nmt.decoder
from nmt.batching import make_batch
from nmt.step_sum import shared_over_steps, step_bmm
from tests.test_model import IDS, MODELS, build, toy_batch


def run_steps(c, x0, transpose, share):
    """A recurrence through products by a square c (B, K, K) that also uses c directly once."""
    shared = shared_over_steps(c, transpose) if share else c
    x, outputs = x0, []
    for _ in range(4):
        y = step_bmm(x, shared, transpose)  # (B, 1, K)
        x = torch.tanh(y)
        outputs.append(y)
    direct = (shared * shared).sum()
    return (torch.cat(outputs, 1) ** 2).sum() + direct


@pytest.mark.parametrize("transpose", [True, False])
def test_step_bmm_gradients_equal_torchs(transpose):
    g = torch.Generator().manual_seed(0)
    c = torch.randn(3, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
    x0 = torch.randn(3, 1, 5, dtype=torch.float64, generator=g, requires_grad=True)
    grads = {}
    for share in (False, True):
        loss = run_steps(c, x0, transpose, share)
        grads[share] = (loss.detach(), *torch.autograd.grad(loss, (c, x0)))
    for got, want in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_step_bmm_without_gradients_or_sharing_is_bmm():
    x, c = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert torch.equal(step_bmm(x, c), torch.bmm(x, c))
    shared = shared_over_steps(c.transpose(1, 2).contiguous(), transpose=True)
    with torch.no_grad():
        assert torch.equal(step_bmm(x, shared, transpose=True), torch.bmm(x, c))


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_gradients_equal_per_step_autograd(overrides, monkeypatch):
    """Every model's loss and gradients are those of plain per-step autograd, in float64."""
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, range(len(src)))
    model = build(*overrides).double()

    def grads():
        model.zero_grad()
        loss = model.loss(batch, 0.0)
        loss.backward()
        return [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]

    deferred = grads()
    monkeypatch.setattr(nmt.decoder, "per_step", lambda keys, enc: (keys, enc))
    plain = grads()
    for got, want in zip(deferred, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
