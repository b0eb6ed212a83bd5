"""The encoder (nmt/models/encoder.py): padding packed away, reversal in source order."""

import torch
from toys import build, toy_batch

from nmt.data.batching import make_batch
from nmt.models.encoder import reverse_padded


def test_encoder_packs_padding_away_and_reversal_keeps_source_order():
    for reverse in (False, True):
        model = build(f"model.encoder.reverse={reverse}")
        src, tgt = toy_batch()
        batch = make_batch(src, tgt, [0, 1, 2])
        with torch.no_grad():
            memory = model.encode(batch.src, batch.src_mask).memory
            for row in range(3):
                alone = make_batch(src, tgt, [row])
                n = alone.src.size(1)
                torch.testing.assert_close(
                    memory[row, :n], model.encode(alone.src, alone.src_mask).memory[0]
                )


def test_reverse_padded_reverses_only_real_steps():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert reverse_padded(x, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
