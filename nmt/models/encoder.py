"""RNN encoders: GRU or LSTM, uni- or bidirectional, stacked, over packed sequences so that
padding never enters the recurrence; optionally self-attention sub-layers over their outputs."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.data.specials import PAD
from nmt.errors import NmtError
from nmt.models.self_attention import SelfAttentionStack

RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}


@dataclasses.dataclass
class EncoderOutput:
    """What the decoder attends to.

    Attributes:
        memory: (B, S, Dk) top-layer states in source order (annotations h_j).
        mask: (B, S) bool, True at real source tokens.
        final: (L * dirs, B, H) final states of every layer and direction, as torch.nn.GRU
            returns them ((h, c) for an LSTM). For a bidirectional layer the backward final state
            is the backward state at the first position (Bahdanau's bwd h_1).
        directions: 2 for a bidirectional encoder, else 1.
        src_ids: (B, S) the source ids (Seq2Seq.encode sets them; copying reads them).
    """

    memory: Tensor
    mask: Tensor
    final: Tensor | tuple[Tensor, Tensor]
    directions: int = 1
    src_ids: Tensor | None = None


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence's first `lengths[b]` steps in place of x (B, S, ...); padding stays."""
    S = x.size(1)
    positions = torch.arange(S, device=x.device).unsqueeze(0)  # (1, S)
    flipped = lengths.unsqueeze(1) - 1 - positions  # (B, S)
    index = torch.where(flipped >= 0, flipped, positions)  # padding maps to itself
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class RNNEncoder(nn.Module):
    """Embeds the source and runs a (bi)RNN over it.

    Args:
        vocab_size, emb_size: source vocabulary and embedding size m.
        hidden_size: H, units per direction and layer.
        cell: "gru" or "lstm".
        bidirectional: concatenate forward and backward states, Dk = 2H.
        num_layers: stacked layers.
        dropout: on the embeddings and between layers.
        reverse: read the source backwards (Luong's "+reverse"); the memory is handed back in
            source order so attention positions keep their meaning.
        self_attention_layers: N multi-head self-attention sub-layers over the RNN's outputs
            (nmt.models.self_attention); the memory is their output, the final states the RNN's.
        self_attention_heads: their heads, dividing Dk.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        cell: str = "gru",
        bidirectional: bool = True,
        num_layers: int = 1,
        dropout: float = 0.0,
        reverse: bool = False,
        # defaults only for the configs saved before these options existed (2026-12-02)
        self_attention_layers: int = 0,
        self_attention_heads: int = 4,
    ) -> None:
        super().__init__()
        if cell not in RNNS:
            raise NmtError(f"model.encoder.cell: '{cell}' is not one of {', '.join(RNNS)}")
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNNS[cell](
            emb_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.hidden_size = hidden_size
        self.output_size = hidden_size * (2 if bidirectional else 1)
        self.reverse = reverse
        self.directions = 2 if bidirectional else 1
        if self_attention_layers < 0:
            raise NmtError(
                f"model.encoder.self_attention_layers: must be >= 0, got {self_attention_layers}"
            )
        if self_attention_layers and self.output_size % self_attention_heads:
            raise NmtError(
                f"model.encoder.self_attention_heads: {self_attention_heads} heads do not divide "
                f"the encoder output size {self.output_size}"
            )
        self.self_attention = SelfAttentionStack(
            layers=self_attention_layers,
            size=self.output_size,
            heads=self_attention_heads,
            dropout=dropout,
        )

    def forward(self, src: Tensor, mask: Tensor) -> EncoderOutput:
        """src (B, S) ids, mask (B, S) -> EncoderOutput with memory (B, S, Dk)."""
        lengths = mask.sum(-1)  # (B,)
        if self.reverse:
            src = reverse_padded(src, lengths)
        emb = self.dropout(self.embedding(src))  # (B, S, m)
        memory, final = self.recur(emb, mask)
        if self.reverse:
            memory = reverse_padded(memory, lengths)
        memory = self.self_attention(memory, mask)
        return EncoderOutput(memory=memory, mask=mask, final=final, directions=self.directions)

    def recur(self, emb: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """The RNN over the packed sequences: emb (B, S, m) -> outputs (B, S, Dk), zero at
        padding, and the final states (L * dirs, B, H) ((h, c) for an LSTM).

        Under autocast the recurrence stays float32: oneDNN's low-precision RNN needs bfloat16
        instructions that not every CPU has."""
        lengths = mask.sum(-1).cpu()
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        with torch.autocast(emb.device.type, enabled=False):
            out, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.size(1))
        return memory, final
