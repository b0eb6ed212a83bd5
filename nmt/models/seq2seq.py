"""The sequence-to-sequence model: encoder, decoder and the output layer."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.data.batching import Batch
from nmt.models.attention import PassRecord
from nmt.models.copy import PointerGenerator
from nmt.models.encoder import EncoderOutput


class Seq2Seq(nn.Module):
    """Encoder, decoder and the output layer W_o: p(y_t | ...) = softmax(W_o features_t), or
    with `copy` the pointer-generator's mixture of it with the attention over the source ids
    (nmt.models.copy)."""

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, tgt_vocab_size: int, copy: bool = False
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.generator = nn.Linear(decoder.output_size, tgt_vocab_size)
        self.pointer = None
        if copy:
            self.pointer = PointerGenerator(
                feature_size=decoder.output_size,
                memory_size=encoder.output_size,
                emb_size=decoder.embedding.embedding_dim,
            )

    def encode(self, src: Tensor, src_mask: Tensor) -> EncoderOutput:
        return dataclasses.replace(self.encoder(src, src_mask), src_ids=src)

    def log_probs(
        self, logits: Tensor, features: Tensor, weights: Tensor, y_prev: Tensor, enc: EncoderOutput
    ) -> Tensor:
        """log p(y_t | ...) (N, V) in float32 from the output layer's logits (N, V) = W_o f_t;
        with copying also from the features f_t (N, H), the attention weights (N, S) and the
        previous tokens y_prev (N,). Each row of enc's memory may serve k consecutive rows, N =
        B k (the beams of a sentence, or the T steps of a teacher-forced sentence)."""
        if self.pointer is None:
            return torch.log_softmax(logits.float(), dim=-1)
        emb = self.decoder.embedding(y_prev)
        return self.pointer(logits, features, emb, weights, enc.memory, enc.src_ids)

    def teacher_forced_log_probs(
        self, enc: EncoderOutput, features: Tensor, weights: Tensor, tgt_in: Tensor
    ) -> Tensor:
        """`log_probs` of every teacher-forced step: features (B, T, H), weights (B, T, S),
        tgt_in (B, T) -> (B T, V), the T steps of a sentence consecutive."""
        rows = [x.flatten(0, 1) for x in (features, weights, tgt_in)]
        return self.log_probs(self.generator(rows[0]), *rows, enc)

    def forward(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """The training loss (`loss`): what a DistributedDataParallel wrapper calls."""
        return self.loss(batch, label_smoothing)

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed token cross-entropy of the batch under teacher forcing, the output layer run
        on real tokens only, plus the loss terms of `loss_terms`."""
        terms = self.loss_terms()
        for term in terms:
            getattr(term, "begin", lambda: None)()
        enc = self.encode(batch.src, batch.src_mask)
        if terms:  # the pass notes what the terms need
            record = PassRecord()
            features, weights = self.decoder(enc, batch.tgt_in, record=record)
        else:
            features, weights = self.decoder(enc, batch.tgt_in)
        if self.pointer is None:
            logits = self.generator(features[batch.tgt_mask])  # (N real tokens, V)
        else:  # log-probabilities, which cross_entropy's log_softmax leaves as they are
            logp = self.teacher_forced_log_probs(enc, features, weights, batch.tgt_in)
            logits = logp[batch.tgt_mask.flatten()]
        targets = batch.tgt_out[batch.tgt_mask]
        loss = F.cross_entropy(logits, targets, reduction="sum", label_smoothing=label_smoothing)
        if terms:
            with torch.no_grad():  # each real token's NLL, (B, T), 0 at padding
                nll = logits.new_zeros(batch.tgt_mask.shape, dtype=torch.float32)
                nll[batch.tgt_mask] = F.cross_entropy(logits.float(), targets, reduction="none")
            loss = loss + sum(term.loss_term(nll, batch.tgt_mask, record) for term in terms)
        return loss

    def loss_terms(self) -> list[nn.Module]:
        """The loss-term hook: submodules with `loss_term(nll, tgt_mask, record)` (hard
        attention's REINFORCE estimator, the coverage loss). `loss` calls their `begin()`, if
        any, before the teacher-forced pass, hands the pass a `PassRecord` in which the
        attention notes what the terms need, and adds `loss_term(nll (B, T) token NLL, 0 at
        padding; tgt_mask (B, T); the record)` after it."""
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
    """The number of the model's parameters."""
    return sum(p.numel() for p in model.parameters())
