"""Decoders. Scoring lives in nmt.attention; a decoder only decides what queries the attention
and where the context goes, so any attention variant plugs into any decoder.

Every decoder offers the same three calls:

    state = decoder.start(enc)                                      # tuple of (B, ...) tensors
    features, weights = decoder(enc, tgt_in)                        # teacher forcing, all steps
    features, state, weights = decoder.step(y_prev, state, enc, keys, t)   # one step (search)

`features` feed the output layer W_o (nmt.model.Seq2Seq.generator), of size `output_size`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.encoder import EncoderOutput
from nmt.tokenizer import PAD


class BahdanauDecoder(nn.Module):
    """The RNNsearch decoder, Bahdanau et al. 2014, A.2.2 (GroundHog's conventions):

        c_i = attention(query = s_{i-1}, annotations h)
        s_i = GRU([E y_{i-1}; c_i], s_{i-1}),     s_0 = tanh(W_s bwd h_1)
        t~_i = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i,   t_i = maxout_2(t~_i)
        p(y_i | ...) = softmax(W_o t_i)           (W_o is the model's generator)

    The readout uses s_{i-1} as in the appendix and GroundHog, not s_i of eq. (4). The GRU follows
    torch's gate convention, s~ = tanh(W E y + C c + r * (U s)), not the paper's U (r * s), so the
    three recurrent products are one matrix product per step. With `NoAttention` and a
    unidirectional encoder this is Cho et al.'s RNNencdec: the last state is the context of every
    step and of the readout, and s_0 is computed from it.

    Args:
        vocab_size, emb_size: target vocabulary and embedding size m.
        hidden_size: n, the decoder state size.
        memory_size: Dk, the annotation size (2n for a bidirectional encoder).
        init_size: size of the encoder final state that s_0 is computed from.
        attention: any module of the nmt.attention interface, built for (n, Dk).
        maxout_size: l, the maxout layer size (default n / 2, the paper's 500 for n = 1000).
        dropout: on the target embeddings and the maxout output.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        memory_size: int,
        init_size: int,
        attention: nn.Module,
        maxout_size: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        maxout_size = maxout_size or hidden_size // 2
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.attention = attention
        self.W_s = nn.Linear(init_size, hidden_size)
        self.W = nn.Linear(emb_size, 3 * hidden_size)  # W_r, W_z, W stacked
        self.C = nn.Linear(memory_size, 3 * hidden_size, bias=False)  # C_r, C_z, C
        self.U = nn.Linear(hidden_size, 3 * hidden_size)  # U_r, U_z, U: the recurrent matrices
        self.U_o = nn.Linear(hidden_size, 2 * maxout_size, bias=False)
        self.V_o = nn.Linear(emb_size, 2 * maxout_size, bias=False)
        self.C_o = nn.Linear(memory_size, 2 * maxout_size)
        self.dropout = nn.Dropout(dropout)
        self.output_size = maxout_size

    def start(self, enc: EncoderOutput) -> tuple[Tensor]:
        """s_0 = tanh(W_s h) from the top layer's last final state: the backward state at the
        first position for a bidirectional encoder, the last forward state otherwise. (B, n)"""
        final = enc.final[0] if isinstance(enc.final, tuple) else enc.final
        return (torch.tanh(self.W_s(final[-1])),)

    def gru(self, x_proj: Tensor, context: Tensor, s: Tensor) -> Tensor:
        """One GRU update. x_proj (B, 3n) = W E y_{i-1}, context (B, Dk), s (B, n) -> (B, n)."""
        gi = x_proj + self.C(context)  # (B, 3n)
        gh = self.U(s)  # (B, 3n)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + r * h_n)
        return (1 - z) * candidate + z * s  # torch's z keeps the old state

    def readout(self, s_prev: Tensor, emb: Tensor, context: Tensor) -> Tensor:
        """Deep output with maxout (pool 2): (..., n), (..., m), (..., Dk) -> (..., l)."""
        t = self.U_o(s_prev) + self.V_o(emb) + self.C_o(context)  # (..., 2l)
        t = t.unflatten(-1, (-1, 2)).amax(-1)  # (..., l)
        return self.dropout(t)

    def forward(self, enc: EncoderOutput, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing. tgt_in (B, T) -> features (B, T, l), weights (B, T, S)."""
        emb = self.dropout(self.embedding(tgt_in))  # (B, T, m)
        x_proj = self.W(emb)  # (B, T, 3n): the input part of every step in one product
        keys = self.attention.project_keys(enc.memory)
        (s,) = self.start(enc)
        states, contexts, weights = [], [], []
        for t in range(tgt_in.size(1)):
            context, alpha = self.attention(s, keys, enc.memory, enc.mask, step=t)
            states.append(s)
            contexts.append(context)
            weights.append(alpha)
            s = self.gru(x_proj[:, t], context, s)
        s_prev = torch.stack(states, dim=1)  # (B, T, n): s_{i-1} for each i
        contexts = torch.stack(contexts, dim=1)  # (B, T, Dk)
        return self.readout(s_prev, emb, contexts), torch.stack(weights, dim=1)

    def step(
        self, y_prev: Tensor, state: tuple[Tensor], enc: EncoderOutput, keys: Tensor, t: int
    ) -> tuple[Tensor, tuple[Tensor], Tensor]:
        """One step. y_prev (B,) -> features (B, l), state ((B, n),), weights (B, S)."""
        (s,) = state
        emb = self.dropout(self.embedding(y_prev))  # (B, m)
        context, alpha = self.attention(s, keys, enc.memory, enc.mask, step=t)
        features = self.readout(s, emb, context)
        return features, (self.gru(self.W(emb), context, s),), alpha
