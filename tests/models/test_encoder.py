"""The encoder (nmt/models/encoder.py): padding packed away, reversal in source order, the
self-attention sub-layers (nmt/models/self_attention.py)."""

import pytest
import torch
from toys import build, toy_batch

from nmt.data.batching import make_batch
from nmt.errors import NmtError
from nmt.models.encoder import reverse_padded
from nmt.models.self_attention import SelfAttentionLayer


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


def test_self_attention_layer_is_the_residual_normed_multi_head_formula():
    """h' = LayerNorm(h + W_O [softmax(Q_i K_i^T / sqrt(d)) V_i]_i), computed per head and per
    sentence from the layer's own parameters; padding takes no weight and comes out zero."""
    torch.manual_seed(0)
    layer = SelfAttentionLayer(size=6, heads=2).eval()
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.5)
    h = torch.randn(2, 4, 6)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    with torch.no_grad():
        got = layer(h, mask)
        mha = layer.attention
        for b, n in enumerate(mask.sum(-1).tolist()):
            x = h[b, :n]  # (n, 6)
            heads = []
            for i in range(2):
                rows = slice(3 * i, 3 * i + 3)
                q, k, v = (W.weight[rows] @ x.T for W in (mha.W_Q, mha.W_K, mha.W_V))  # (3, n)
                alpha = torch.softmax(q.T @ k / 3**0.5, dim=-1)  # (n, n)
                heads.append(alpha @ v.T)  # (n, 3)
            context = torch.cat(heads, dim=-1) @ mha.W_O.weight.T  # (n, 6)
            want = torch.nn.functional.layer_norm(
                x + context, (6,), layer.norm.weight, layer.norm.bias
            )
            torch.testing.assert_close(got[b, :n], want)
            assert got[b, n:].abs().sum() == 0


def test_self_attention_heads_must_divide_the_output_size():
    with pytest.raises(NmtError, match="model.encoder.self_attention_heads"):
        build("model.encoder.self_attention_layers=1", "model.encoder.self_attention_heads=5")
