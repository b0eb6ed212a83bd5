"""Decoding: greedy search over a whole batch."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from nmt.model import Seq2Seq
from nmt.tokenizer import BOS, EOS


@dataclasses.dataclass
class Hypothesis:
    """A decoded sentence: ids without <s>/</s>, and its attention (len(ids) + 1, S) incl. </s>."""

    ids: list[int]
    attention: Tensor


def max_lengths(src_mask: Tensor, ratio: float, extra: int) -> Tensor:
    """(B,) longest allowed output per sentence: ratio x source length + extra."""
    return (src_mask.sum(-1).float() * ratio).long() + extra


@torch.inference_mode()
def greedy(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, *, max_len_ratio: float, max_len_extra: int
) -> list[Hypothesis]:
    """Greedy search: the arg-max token at every step, until </s> or the length limit.

    Args:
        src: (B, S) source ids; src_mask: (B, S) bool.
    """
    enc = model.encode(src, src_mask)
    decoder = model.decoder
    keys = decoder.attention.project_keys(enc.memory)
    state = decoder.start(enc)
    B = src.size(0)
    limit = max_lengths(src_mask, max_len_ratio, max_len_extra)
    y = torch.full((B,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    tokens, weights = [], []
    for t in range(int(limit.max())):
        features, state, alpha = decoder.step(y, state, enc, keys, t)
        y = model.generator(features).argmax(-1)  # (B,)
        y = torch.where(done | (t >= limit), torch.full_like(y, EOS), y)
        tokens.append(y)
        weights.append(alpha)
        done |= y.eq(EOS)
        if bool(done.all()):
            break
    tokens = torch.stack(tokens, dim=1).tolist()  # (B, steps)
    weights = torch.stack(weights, dim=1)  # (B, steps, S)
    hyps = []
    for b, seq in enumerate(tokens):
        n = seq.index(EOS) if EOS in seq else len(seq)
        hyps.append(Hypothesis(ids=seq[:n], attention=weights[b, : n + 1].cpu()))
    return hyps
