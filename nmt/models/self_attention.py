"""Self-attention over the encoder's annotations (the taxonomy's "self" and "multi-layer"
attention): sub-layers of multi-head attention whose queries, keys and values are the
annotations themselves, each with a residual connection and layer normalisation (Vaswani et al.
2017, section 3.1), stacked on the RNN's outputs."""

from __future__ import annotations

from torch import Tensor, nn

from nmt.models.attention import MultiHeadAttention, ScaledDotScore


class SelfAttentionLayer(nn.Module):
    """h'_j = LayerNorm(h_j + Dropout(MultiHead(h_j; h_1..h_S))), the heads' score Vaswani et
    al.'s scaled dot product, padding masked out of the keys and zeroed in the output.

    Args:
        size: Dk, the annotations' size.
        heads: H, dividing Dk.
        dropout: on the sub-layer's output before the residual sum.
    """

    def __init__(self, *, size: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(
            query_size=size, key_size=size, heads=heads, score=ScaledDotScore
        )
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(size)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        """h (B, S, Dk), mask (B, S) True at real tokens -> h' (B, S, Dk), zero at padding."""
        keys = self.attention.project_keys(h)
        context, _ = self.attention(h, keys, h, mask)  # (B, S, Dk)
        return self.norm(h + self.dropout(context)) * mask.unsqueeze(-1)


class SelfAttentionStack(nn.Module):
    """N SelfAttentionLayers, one after another; N = 0 is the identity."""

    def __init__(self, *, layers: int, size: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SelfAttentionLayer(size=size, heads=heads, dropout=dropout) for _ in range(layers)
        )

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        """h (B, S, Dk) -> (B, S, Dk)."""
        for layer in self.layers:
            h = layer(h, mask)
        return h
