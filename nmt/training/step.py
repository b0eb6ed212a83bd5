"""One training update: the mean token loss, its gradients (scaled under float16), clipping
and the optimizer's step, or a skipped step where the loss or the norm is not finite."""

from __future__ import annotations

import math

import torch

from nmt.config import TrainerConfig
from nmt.data.batching import Batch
from nmt.devices import autocast
from nmt.models.seq2seq import Seq2Seq


def train_step(
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    cfg: TrainerConfig,
    clip_norm: float | None,
    tokens: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, float]:
    """One update on the mean token loss. Returns (summed loss, gradient norm before clipping).
    A loss or norm that is not finite skips the update: the weights and the optimizer's state
    stay as they were (see `finite_step`).

    Args:
        model: the Seq2Seq, or its DistributedDataParallel wrapper (its forward is the loss).
        tokens: what the summed loss is divided by: the batch's target tokens by default; under
            DDP the global batch's over the ranks (nmt.training.distributed.step_tokens).
        scaler: float16's gradient scaler (nmt.devices.grad_scaler). It skips a step whose
            scaled gradients overflow and lowers its scale, so there a non-finite norm is
            the scaler's business, not a failure (`skipped_update` tells them apart).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast(cfg.precision, batch.src.device):
        loss = model(batch, cfg.label_smoothing)
    mean = loss / (tokens or batch.n_tokens)
    value = float(loss.detach())
    if scaler is not None:
        scaler.scale(mean).backward()
        scaler.unscale_(optimizer)
        norm = clip_gradients(model, clip_norm)
        scaler.step(optimizer)  # skipped where the gradients overflowed
        scaler.update()
        return value, norm
    mean.backward()
    norm = clip_gradients(model, clip_norm)
    if finite_step(value, norm):
        optimizer.step()
    else:
        optimizer.zero_grad(set_to_none=True)
    return value, norm


def finite_step(loss: float, norm: float) -> bool:
    """Whether an update's loss and gradient norm are both finite."""
    return math.isfinite(loss) and math.isfinite(norm)


def skipped_update(loss: float, norm: float, scaled: bool) -> bool:
    """Whether a step failed: a non-finite loss, or a non-finite norm without a loss scaler."""
    return not math.isfinite(loss) if scaled else not finite_step(loss, norm)


def clip_gradients(model: torch.nn.Module, clip_norm: float | None) -> float:
    """torch's clip_grad_norm_: the gradients scaled by min(1, clip_norm / (norm + 1e-6)), and
    their norm before. The scaling, a pass over every gradient, runs only where it is below 1:
    at 1 it changes nothing."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if clip_norm is not None and clip_norm / (norm + 1e-6) < 1:  # torch's own coefficient
        torch.nn.utils.clip_grads_with_norm_(model.parameters(), clip_norm, norm)
    return float(norm)
