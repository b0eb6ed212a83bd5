"""One update under float16's gradient scaler: an overflowing step is the scaler's to skip (it
lowers its scale and the weights stay), not a failure of the run."""

import math

import torch
from toys import build, toy_batch

from nmt.config import TrainerConfig, defaults
from nmt.data.batching import make_batch
from nmt.training.step import skipped_update, train_step


def test_an_overflow_under_the_scaler_skips_the_step_and_lowers_the_scale():
    model = build("model=rnnsearch")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    batch = make_batch(*toy_batch(), [0, 1, 2])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = defaults(TrainerConfig)
    # the loss over 1e-3 tokens: gradients 1000x larger, which overflow at this scale
    loss, norm = train_step(model, optimizer, batch, trainer, None, 1e-3, scaler)
    assert math.isfinite(loss) and not math.isfinite(norm)
    assert not skipped_update(loss, norm, scaled=True) and skipped_update(loss, norm, False)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert scaler.get_scale() < 2.0**127

    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)  # an ordinary scale: a real step
    loss, norm = train_step(model, optimizer, batch, trainer, None, None, scaler)
    assert math.isfinite(norm)
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters())
