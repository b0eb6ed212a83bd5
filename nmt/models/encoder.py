"""RNN encoders: GRU or LSTM, uni- or bidirectional, stacked, over packed sequences so that
padding never enters the recurrence (an LSTM training on CPU: a padded loop with the same
results, `lstm_steps`)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.data.specials import PAD
from nmt.errors import NmtError
from nmt.fast.lstm import lstm_update
from nmt.fast.step_sum import shared_over_steps, step_matmul

RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}
# lstm_steps pads the rows of its input product (S * B) with zeros to a multiple of this, so that
# oneDNN compiles a kernel for every eighth length of a 64-sentence batch rather than every one
INPUT_ROWS = 512


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
    """

    memory: Tensor
    mask: Tensor
    final: Tensor | tuple[Tensor, Tensor]
    directions: int = 1


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence's first `lengths[b]` steps in place of x (B, S, ...); padding stays."""
    S = x.size(1)
    positions = torch.arange(S, device=x.device).unsqueeze(0)  # (1, S)
    flipped = lengths.unsqueeze(1) - 1 - positions  # (B, S)
    index = torch.where(flipped >= 0, flipped, positions)  # padding maps to itself
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def lstm_steps(rnn: nn.LSTM, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """What `rnn` (batch_first) computes over the packed x (B, S, I), as a loop over the padded
    steps: -> outputs (B, S, dirs * H), zero at padding, and final (h, c), each (L * dirs, B, H).

    For training on CPU. Under autocast its products take few shapes (one per batch size, and per
    INPUT_ROWS rows of input), where the packed recurrence takes a new row count at every step,
    each a new oneDNN kernel to compile and keep (see nmt.fast.loss.ROWS); they run in autocast's
    dtype, and the gates, the cell state and the outputs stay in x's. In float32 its gradients
    cost less than the packed call's, whose per-step slices of the input product each
    back-propagate a zero-filled tensor of the product's full size. The backward direction reads
    each sentence reversed within its length, so every sentence starts at step 0 and its final
    states are those at its last token; the steps past it run on padding and are masked out.
    """
    dirs = 2 if rnn.bidirectional else 1
    B, S, _ = x.shape
    H = rnn.hidden_size
    dtype = (
        torch.get_autocast_dtype(x.device.type)
        if torch.is_autocast_enabled(x.device.type)
        else x.dtype
    )
    lengths = mask.sum(-1)  # (B,)
    last = (lengths - 1).view(1, B, 1, 1).expand(dirs, B, 1, H)
    finals_h, finals_c = [], []
    with torch.autocast(x.device.type, enabled=False):
        for layer in range(rnn.num_layers):
            if layer > 0:
                x = F.dropout(x, rnn.dropout, rnn.training)
            # W_ih, W_hh, b_ih, b_hh of each direction, stacked: (dirs, 4H, I), (dirs, 4H, H), ...
            w_ih, w_hh, b_ih, b_hh = (
                torch.stack(w) for w in zip(*rnn.all_weights[layer * dirs :][:dirs], strict=True)
            )
            inputs = (x, reverse_padded(x, lengths))[:dirs]
            xs = torch.stack([i.transpose(0, 1) for i in inputs]).flatten(1, 2)  # (dirs, S * B, I)
            if dtype != x.dtype:
                xs = F.pad(xs, (0, 0, 0, -(S * B) % INPUT_ROWS))  # (dirs, N >= S * B, I)
            gx = torch.bmm(xs.to(dtype), w_ih.transpose(1, 2).to(dtype))  # (dirs, N, 4H)
            gx = gx[:, : S * B].to(x.dtype) + (b_ih + b_hh).unsqueeze(1)  # (dirs, S * B, 4H)
            gx = gx.view(dirs, S, B, 4 * H)
            # (dirs, H, 4H), its gradient formed once over the steps (nmt.fast.step_sum)
            w_hh_t = shared_over_steps(w_hh.transpose(1, 2).to(dtype))
            h = c = x.new_zeros(dirs, B, H)
            hs, cs = [], []
            for gx_t in gx.unbind(1):  # (dirs, B, 4H)
                h, c = lstm_update(gx_t + step_matmul(h.to(dtype), w_hh_t), c)
                hs.append(h)
                cs.append(c)
            states_h, states_c = torch.stack(hs, dim=2), torch.stack(cs, dim=2)  # (dirs, B, S, H)
            finals_h.append(states_h.gather(2, last).squeeze(2))  # (dirs, B, H)
            finals_c.append(states_c.gather(2, last).squeeze(2))
            outputs = (states_h * mask.view(1, B, S, 1)).unbind(0)  # dirs x (B, S, H)
            if dirs == 2:
                outputs = (outputs[0], reverse_padded(outputs[1], lengths))
            x = torch.cat(outputs, dim=-1)  # (B, S, dirs * H)
    return x, (torch.cat(finals_h), torch.cat(finals_c))


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

    def runs_steps(self, src: Tensor) -> bool:
        """Whether an LSTM runs as `lstm_steps`: on CPU under autocast or with gradients (cuDNN
        takes low precision, and decoding keeps the packed call, faster without a backward)."""
        return (
            isinstance(self.rnn, nn.LSTM)
            and self.rnn.bias
            and src.device.type == "cpu"
            and (torch.is_autocast_enabled("cpu") or torch.is_grad_enabled())
        )

    def forward(self, src: Tensor, mask: Tensor) -> EncoderOutput:
        """src (B, S) ids, mask (B, S) -> EncoderOutput with memory (B, S, Dk)."""
        lengths = mask.sum(-1)  # (B,)
        if self.reverse:
            src = reverse_padded(src, lengths)
        emb = self.dropout(self.embedding(src))  # (B, S, m)
        if self.runs_steps(src):
            memory, final = lstm_steps(self.rnn, emb, mask)
        else:
            packed = pack_padded_sequence(
                emb, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            # The packed recurrence under autocast would go through oneDNN in low precision with
            # products of a new shape at almost every step (see lstm_steps): float32 here.
            with torch.autocast(src.device.type, enabled=False):
                out, final = self.rnn(packed)
            memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        if self.reverse:
            memory = reverse_padded(memory, lengths)
        return EncoderOutput(memory=memory, mask=mask, final=final, directions=self.directions)
