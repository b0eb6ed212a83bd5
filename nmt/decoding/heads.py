"""Each head's attention weights over a found hypothesis, for a model with multi-head attention:
a search keeps only the heads' mean, so the hypothesis is teacher-forced again with a hook
that asks the attention for its heads (teacher forcing gives the search's weights; tested)."""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.data.specials import BOS
from nmt.models.attention import MultiHeadAttention, as_sequence
from nmt.models.seq2seq import Seq2Seq


def has_heads(model: Seq2Seq) -> bool:
    """Whether the model's attention is multi-head (its heads can be shown one by one)."""
    return isinstance(getattr(model.decoder, "attention", None), MultiHeadAttention)


@torch.no_grad()
def head_weights(model: Seq2Seq, src_ids: list[int], ids: list[int]) -> Tensor:
    """The decoder's heads' weights (H, len(ids) + 1, S) over the source ids `src_ids` (S, </s>
    last) for the hypothesis `ids` (without <s> and </s>): one row per output step, </s>
    included."""
    attention = model.decoder.attention
    device = next(model.parameters()).device
    src = torch.tensor([src_ids], device=device)  # (1, S)
    tgt_in = torch.tensor([[BOS, *ids]], device=device)  # (1, T)
    steps: list[Tensor] = []

    def record(module, args, kwargs, output) -> None:
        query, keys, _, mask = args[:4]
        weights, _ = module.head_weights(as_sequence(query)[0], keys, mask)  # (B, H, T', S)
        steps.append(weights)

    hook = attention.register_forward_hook(record, with_kwargs=True)
    try:
        model.decoder(model.encode(src, torch.ones_like(src, dtype=torch.bool)), tgt_in)
    finally:
        hook.remove()
    return torch.cat(steps, dim=2)[0].float().cpu()  # (H, T, S)
