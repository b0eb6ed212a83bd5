"""The sequence-to-sequence model: encoder, decoder and the output layer."""

from __future__ import annotations

import torch
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
        on real tokens only, plus the loss terms of `loss_terms`."""
        terms = self.loss_terms()
        for term in terms:
            term.begin()
        features, _ = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        logits = self.generator(features[batch.tgt_mask])  # (N real tokens, V)
        targets = batch.tgt_out[batch.tgt_mask]
        loss = F.cross_entropy(logits, targets, reduction="sum", label_smoothing=label_smoothing)
        if terms:
            with torch.no_grad():  # each real token's NLL, (B, T), 0 at padding
                nll = logits.new_zeros(batch.tgt_mask.shape, dtype=torch.float32)
                nll[batch.tgt_mask] = F.cross_entropy(logits.float(), targets, reduction="none")
            loss = loss + sum(term.loss_term(nll, batch.tgt_mask) for term in terms)
        return loss

    def loss_terms(self) -> list[nn.Module]:
        """The loss-term hook: submodules with `begin()` and `loss_term(nll, tgt_mask)` (hard
        attention's REINFORCE estimator). `loss` calls `begin()` before the teacher-forced pass
        and adds `loss_term(nll (B, T) token NLL, 0 at padding; tgt_mask (B, T))` after it."""
        return [m for m in self.modules() if m is not self and hasattr(m, "loss_term")]

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
