"""The sequence-to-sequence model: encoder, decoder and the output layer."""

from __future__ import annotations

from torch import Tensor, nn

from nmt.data.batching import Batch
from nmt.fast.loss import linear_cross_entropy
from nmt.fast.packed import Linear
from nmt.models.encoder import EncoderOutput


class Seq2Seq(nn.Module):
    """Encoder, decoder and the output layer W_o: p(y_t | ...) = softmax(W_o features_t)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, tgt_vocab_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.generator = Linear(decoder.output_size, tgt_vocab_size)

    def encode(self, src: Tensor, src_mask: Tensor) -> EncoderOutput:
        return self.encoder(src, src_mask)

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed token cross-entropy of the batch; the output layer runs on real tokens only,
        in chunks (nmt/loss.py)."""
        features, _ = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        return linear_cross_entropy(
            features[batch.tgt_mask],  # (N real tokens, H)
            self.generator.weight,
            self.generator.bias,
            batch.tgt_out[batch.tgt_mask],
            label_smoothing,
        )

    def attention_weights(self, batch: Batch) -> Tensor:
        """Teacher-forced attention weights (B, T, S)."""
        _, weights = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        return weights


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
