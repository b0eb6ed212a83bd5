"""Decoders. Scoring lives in nmt.models.attention; a decoder only decides what queries the
attention and where the context goes, so any attention variant plugs into any decoder.

Every decoder offers the same three calls:

    state = decoder.start(enc)                                      # tuple of (B, ...) tensors
    features, weights = decoder(enc, tgt_in)                        # teacher forcing, all steps
    features, state, weights = decoder.step(y_prev, state, enc, keys, t)   # one step (search)

`features` feed the output layer W_o (nmt.models.seq2seq.Seq2Seq.generator), of size `output_size`.
A stateful attention variant's state (nmt.models.attention) rides at the end of the decoder's
state tuple, so search reorders and prunes it with the rest; under teacher forcing it is
threaded through the steps.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.data.specials import PAD
from nmt.errors import NmtError
from nmt.models.attention import (
    PassRecord,
    attend,
    attention_state,
    is_stateful,
    project_keys,
)
from nmt.models.encoder import EncoderOutput


@dataclasses.dataclass(frozen=True)
class DecoderSizes:
    """The sizes every decoder is built with, which the builder derives from the `model` config,
    the encoder and the target vocabulary.

    Attributes:
        vocab_size, emb_size: target vocabulary and embedding size m.
        hidden_size: n, the decoder state size.
        memory_size: Dk, the annotation size (2n for a bidirectional encoder).
        encoder_size: H, the encoder's units per direction.
    """

    vocab_size: int
    emb_size: int
    hidden_size: int
    memory_size: int
    encoder_size: int


class BahdanauDecoder(nn.Module):
    """The RNNsearch decoder, Bahdanau et al. 2014, A.2.2 (GroundHog's conventions):

        c_i = attention(query = s_{i-1}, annotations h)
        s_i = GRU([E y_{i-1}; c_i], s_{i-1}),     s_0 = tanh(W_s bwd h_1)
        t~_i = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i,   t_i = maxout_2(t~_i)
        p(y_i | ...) = softmax(W_o t_i)           (W_o is the model's generator)

    The readout uses s_{i-1} as in the appendix and GroundHog, not s_i of eq. (4). The GRU follows
    torch's gate convention, s~ = tanh(W E y + C c + r * (U s)), not the paper's U (r * s), so the
    three recurrent products are one matrix product per step. With `NoAttention` and a
    unidirectional encoder this is Cho et al.'s RNNencdec: the encoder's last state (of its
    reading) is the context of every step and of the readout, and s_0 is computed from it.

    Args:
        sizes: V, m, n, Dk and H (s_0 is computed from one encoder state, of size H).
        attention: any module of the nmt.models.attention interface, built for (n, Dk).
        maxout_size: l, the maxout layer size (default n / 2, the paper's 500 for n = 1000).
        dropout: on the target embeddings and the maxout output.
    """

    def __init__(
        self,
        *,
        sizes: DecoderSizes,
        attention: nn.Module,
        maxout_size: int | None,
        dropout: float,
    ) -> None:
        super().__init__()
        m, n, Dk = sizes.emb_size, sizes.hidden_size, sizes.memory_size
        l = maxout_size or n // 2  # noqa: E741 (the paper's symbol)
        self.embedding = nn.Embedding(sizes.vocab_size, m, padding_idx=PAD)
        self.attention = attention
        self.W_s = nn.Linear(sizes.encoder_size, n)
        self.W = nn.Linear(m, 3 * n)  # W_r, W_z, W stacked
        self.C = nn.Linear(Dk, 3 * n, bias=False)  # C_r, C_z, C
        self.U = nn.Linear(n, 3 * n)  # U_r, U_z, U: the recurrent matrices
        self.U_o = nn.Linear(n, 2 * l, bias=False)
        self.V_o = nn.Linear(m, 2 * l, bias=False)
        self.C_o = nn.Linear(Dk, 2 * l)
        self.dropout = nn.Dropout(dropout)
        self.output_size = l

    def start(self, enc: EncoderOutput) -> tuple[Tensor, ...]:
        """(s_0, *the attention's state): s_0 = tanh(W_s h) (B, n) from the top layer's last
        final state, the backward state at the first position for a bidirectional encoder, the
        last forward state otherwise."""
        final = enc.final[0] if isinstance(enc.final, tuple) else enc.final
        s_0 = torch.tanh(self.W_s(final[-1])).to(final.dtype)  # float32 under autocast
        return (s_0, *attention_state(self.attention, enc.memory, enc.mask))

    def gru(self, x_proj: Tensor, context: Tensor, s: Tensor) -> Tensor:
        """One GRU update. x_proj (B, 3n) = W E y_{i-1}, context (B, Dk), s (B, n) -> (B, n)."""
        # under autocast the products run in low precision and the update in s's dtype
        gi = (x_proj + self.C(context)).to(s.dtype)  # (B, 3n)
        gh = self.U(s).to(s.dtype)  # (B, 3n)
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

    def forward(
        self, enc: EncoderOutput, tgt_in: Tensor, record: PassRecord | None = None
    ) -> tuple[Tensor, Tensor]:
        """Teacher forcing. tgt_in (B, T) -> features (B, T, l), weights (B, T, S); `record`
        goes to the attention (its loss term's notes)."""
        emb = self.dropout(self.embedding(tgt_in))  # (B, T, m)
        x_proj = self.W(emb)  # (B, T, 3n): the input part of every step in one product
        keys = project_keys(self.attention, enc.memory)
        s, *attn_state = self.start(enc)
        states, contexts, weights = [], [], []
        # unbind once: indexing x_proj[:, t] would back-propagate a full-size zero tensor per step
        for t, x_t in enumerate(x_proj.unbind(1)):
            context, alpha, attn_state = attend(
                self.attention, s, keys, enc.memory, enc.mask, t, attn_state, record
            )
            states.append(s)
            contexts.append(context)
            weights.append(alpha)
            s = self.gru(x_t, context, s)
        s_prev = torch.stack(states, dim=1)  # (B, T, n): s_{i-1} for each i
        contexts = torch.stack(contexts, dim=1)  # (B, T, Dk)
        return self.readout(s_prev, emb, contexts), torch.stack(weights, dim=1)

    def step(
        self, y_prev: Tensor, state: tuple[Tensor, ...], enc: EncoderOutput, keys: Tensor, t: int
    ) -> tuple[Tensor, tuple[Tensor, ...], Tensor]:
        """One step. y_prev (B,) -> features (B, l), state (s (B, n), *attention's), weights
        (B, S)."""
        s, *attn_state = state
        emb = self.dropout(self.embedding(y_prev))  # (B, m)
        context, alpha, attn_state = attend(
            self.attention, s, keys, enc.memory, enc.mask, t, attn_state
        )
        features = self.readout(s, emb, context)
        return features, (self.gru(self.W(emb), context, s), *attn_state), alpha


def bridge(enc: EncoderOutput) -> tuple[Tensor, Tensor]:
    """Encoder final states -> the decoder's initial (h_0, c_0), each (B, L, dirs * H).

    A bidirectional layer's forward and backward final states are concatenated, which is why the
    Luong decoder is sized as the encoder output (2H); a GRU encoder's cell state starts at zero.
    """
    h, c = enc.final if isinstance(enc.final, tuple) else (enc.final, torch.zeros_like(enc.final))
    dirs = enc.directions
    L = h.size(0) // dirs

    def merge(x: Tensor) -> Tensor:  # (L * dirs, B, H) -> (B, L, dirs * H)
        return x.view(L, dirs, x.size(1), x.size(2)).permute(2, 0, 1, 3).flatten(2)

    return merge(h), merge(c)


class LuongDecoder(nn.Module):
    """The stacked-LSTM decoder of Luong et al. 2015, 3:

        h_t = LSTM(input_t, h_{t-1}),  input_t = [E y_{t-1}; h~_{t-1}] with input feeding (3.3)
                                          or E y_{t-1} without
        c_t = attention(query = top-layer h_t, encoder top-layer states)
        h~_t = tanh(W_c [c_t; h_t]),   p(y_t | ...) = softmax(W_s h~_t)   (W_s is the generator)

    The layers start from the encoder's final states (concatenated over directions, so the
    decoder size equals the encoder output size). Without input feeding the recurrence does not
    depend on attention, so teacher forcing runs the LSTM over the whole sequence in one call.
    With `NoAttention` the context is the encoder's top-layer final state of its reading in each
    direction, the same for every t, so h~_t = tanh(W_c [c; h_t]) conditions every step on the
    whole source beside the initial state; the paper's base model has no context and predicts
    from h_t directly (one W_c fewer).

    Args:
        sizes: the decoder's units per layer (`hidden_size`) must be the encoder output size
            (`memory_size`, see `bridge`); `encoder_size` is unused here.
        attention: any module of the nmt.models.attention interface.
        num_layers: stacked LSTM layers (as many as the encoder's).
        dropout: on the embeddings, between layers and on h~_t (Zaremba-style, non-recurrent).
        input_feed: feed h~_{t-1} into the first layer.
    """

    def __init__(
        self,
        *,
        sizes: DecoderSizes,
        attention: nn.Module,
        num_layers: int,
        dropout: float,
        input_feed: bool,
    ) -> None:
        super().__init__()
        hidden_size, memory_size = sizes.hidden_size, sizes.memory_size
        if hidden_size != memory_size:
            raise NmtError(
                f"model.decoder_size: the luong decoder starts from the encoder's final states, so "
                f"its size must be the encoder output size {memory_size}, not {hidden_size} "
                "(set model.decoder_size=null)"
            )
        self.embedding = nn.Embedding(sizes.vocab_size, sizes.emb_size, padding_idx=PAD)
        self.attention = attention
        self.lstm = nn.LSTM(
            sizes.emb_size + (hidden_size if input_feed else 0),
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.W_c = nn.Linear(memory_size + hidden_size, hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.input_feed = input_feed
        self.num_layers = num_layers
        self.output_size = hidden_size

    def start(self, enc: EncoderOutput) -> tuple[Tensor, ...]:
        """(h (B, L, H), c (B, L, H), h~_0 = 0 (B, H), *the attention's state)."""
        h, c = bridge(enc)
        if h.size(1) != self.num_layers:
            raise NmtError(
                f"model.decoder.num_layers: the luong decoder has {self.num_layers} layers but "
                f"starts from an encoder of {h.size(1)}; they must match"
            )
        feed = h.new_zeros(h.size(0), h.size(2))
        return (h, c, feed, *attention_state(self.attention, enc.memory, enc.mask))

    def attentional(
        self,
        h_top: Tensor,
        enc: EncoderOutput,
        keys: Tensor,
        step,
        attn_state: tuple = (),
        record: PassRecord | None = None,
    ) -> tuple[Tensor, Tensor, tuple]:
        """h~_t = tanh(W_c [c_t; h_t]): h_top (B, [T,] H) -> h~ (B, [T,] H), weights
        (B, [T,] S), the attention's new state."""
        context, weights, attn_state = attend(
            self.attention, h_top, keys, enc.memory, enc.mask, step, attn_state, record
        )
        h_tilde = torch.tanh(self.W_c(torch.cat([context, h_top], dim=-1)))  # (B, [T,] H)
        return self.dropout(h_tilde), weights, attn_state

    def cell_step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step of the stacked LSTM: x (B, I), h and c (B, L, H) -> the top layer's output
        (B, H), h, c. One torch.lstm_cell per layer on nn.LSTM's own parameters: a one-step
        nn.LSTM call has a fixed cost whatever the batch, which would dominate a search's steps
        once most sentences of its batch have ended."""
        hs, cs = [], []
        for layer in range(self.num_layers):
            if layer > 0:
                x = F.dropout(x, self.lstm.dropout, self.training)
            x, c_layer = torch.lstm_cell(
                x, (h[:, layer], c[:, layer]), *self.lstm.all_weights[layer]
            )
            hs.append(x)
            cs.append(c_layer)
        return x, torch.stack(hs, dim=1), torch.stack(cs, dim=1)

    def forward(
        self, enc: EncoderOutput, tgt_in: Tensor, record: PassRecord | None = None
    ) -> tuple[Tensor, Tensor]:
        """Teacher forcing. tgt_in (B, T) -> features h~ (B, T, H), weights (B, T, S); `record`
        goes to the attention (its loss term's notes)."""
        emb = self.dropout(self.embedding(tgt_in))  # (B, T, m)
        keys = project_keys(self.attention, enc.memory)
        h, c, feed, *attn_state = self.start(enc)
        T = tgt_in.size(1)
        if not self.input_feed:
            state = (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous())
            # (B, T, H): the whole recurrence in one call. On CPU it runs in float32 under
            # autocast too, as the encoder's packed call does: oneDNN has no bfloat16 LSTM on
            # CPUs without bfloat16 instructions (AVX2 only), and one precision on every CPU
            # keeps a run's numbers the same across machines.
            # (CPU autocast's switch leaves CUDA's alone.)
            with torch.autocast("cpu", enabled=False):
                top, _ = self.lstm(emb, state)
            if not is_stateful(self.attention):
                steps = torch.arange(T, device=tgt_in.device)
                return self.attentional(top, enc, keys, steps, record=record)[:2]
            tops = top.unbind(1)  # a stateful attention goes one step at a time
        features, weights = [], []
        for t, emb_t in enumerate(emb.unbind(1)):  # unbind: one gradient buffer, not T
            if self.input_feed:
                top, h, c = self.cell_step(torch.cat([emb_t, feed], dim=-1), h, c)
            else:
                top = tops[t]
            feed, alpha, attn_state = self.attentional(top, enc, keys, t, attn_state, record)
            features.append(feed)
            weights.append(alpha)
        return torch.stack(features, dim=1), torch.stack(weights, dim=1)

    def step(
        self,
        y_prev: Tensor,
        state: tuple[Tensor, ...],
        enc: EncoderOutput,
        keys: Tensor,
        t: int,
    ) -> tuple[Tensor, tuple[Tensor, ...], Tensor]:
        """One step. y_prev (B,) -> features h~_t (B, H), state, weights (B, S)."""
        h, c, feed, *attn_state = state
        top, h, c = self.cells(y_prev, feed, h, c)
        feed, alpha, attn_state = self.attentional(top, enc, keys, t, attn_state)
        return feed, (h, c, feed, *attn_state), alpha

    def cells(
        self, y_prev: Tensor, feed: Tensor, h: Tensor, c: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The LSTM's step from y_{t-1} (B,) and, with input feeding, h~_{t-1} (B, H)."""
        x = self.dropout(self.embedding(y_prev))  # (B, m)
        if self.input_feed:
            x = torch.cat([x, feed], dim=-1)  # (B, m + H)
        return self.cell_step(x, h, c)
