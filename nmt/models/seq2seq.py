"""The sequence-to-sequence model: encoder, decoder and the output layer."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from nmt.data.batching import Batch
from nmt.models.encoder import EncoderOutput


class Seq2Seq(nn.Module):
    """Encoder, decoder and the output layer W_o: p(y_t | ...) = softmax(W_o features_t)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, tgt_vocab_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.generator = nn.Linear(decoder.output_size, tgt_vocab_size)

    def encode(self, src: Tensor, src_mask: Tensor) -> EncoderOutput:
        return self.encoder(src, src_mask)

    def forward(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """The training loss (`loss`): what a DistributedDataParallel wrapper calls."""
        return self.loss(batch, label_smoothing)

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed token cross-entropy of the batch under teacher forcing, the output layer run
        on real tokens only."""
        features, _ = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        logits = self.generator(features[batch.tgt_mask])  # (N real tokens, V)
        return F.cross_entropy(
            logits,
            batch.tgt_out[batch.tgt_mask],
            reduction="sum",
            label_smoothing=label_smoothing,
        )

    def best_tokens(self, logp: Tensor) -> tuple[Tensor, Tensor]:
        """Greedy search's pick: logp (nb, V) -> each row's largest value and its first index."""
        return logp.max(-1)

    def best_candidates(self, scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Beam search's pick: scores (nb, N) -> each row's k largest values, largest first, and
        their indices."""
        return scores.topk(k, dim=-1)

    def attention_weights(self, batch: Batch) -> Tensor:
        """Teacher-forced attention weights (B, T, S)."""
        _, weights = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        return weights


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
