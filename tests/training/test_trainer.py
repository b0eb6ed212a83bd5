"""The training step's pieces against torch's own."""

import copy

import pytest
import torch

from nmt.training.step import clip_gradients


@pytest.mark.parametrize("clip_norm", [0.5, 100.0, None])
def test_clip_gradients_equals_torchs_clip_grad_norm(clip_norm):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Linear(5, 3))
    model(torch.randn(4, 7)).pow(2).sum().backward()
    reference = copy.deepcopy(model)
    for copied, p in zip(reference.parameters(), model.parameters(), strict=True):
        copied.grad = p.grad.clone()
    want = torch.nn.utils.clip_grad_norm_(
        reference.parameters(), clip_norm if clip_norm is not None else float("inf")
    )
    assert clip_gradients(model, clip_norm) == float(want)
    for got, expected in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(got.grad, expected.grad)
    if clip_norm == 0.5:  # the norm is above it: the gradients were scaled
        norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
        assert float(norm) == pytest.approx(0.5, rel=1e-5)
