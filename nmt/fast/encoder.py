"""The encoder's LSTM for training on CPU: `lstm_steps`, the recurrence as a padded loop with
the packed call's results, and the encoder that takes it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.devices import product_dtype
from nmt.fast.lstm import lstm_update
from nmt.fast.step_sum import constant
from nmt.models.encoder import RNNEncoder, reverse_padded

# lstm_steps pads the rows of its input product (S * B) with zeros to a multiple of this, so that
# oneDNN compiles a kernel for every eighth length of a 64-sentence batch rather than every one
INPUT_ROWS = 512


def runs_steps(rnn: nn.Module, x: Tensor) -> bool:
    """Whether an encoder RNN runs as `lstm_steps`: an LSTM with biases on CPU, under autocast
    or with gradients (decoding keeps the packed call, faster without a backward)."""
    return (
        isinstance(rnn, nn.LSTM)
        and rnn.bias
        and x.device.type == "cpu"
        and (torch.is_autocast_enabled("cpu") or torch.is_grad_enabled())
    )


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
    dtype = product_dtype(x)
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
            w_hh_t = constant(w_hh.transpose(1, 2).to(dtype))
            h = c = x.new_zeros(dirs, B, H)
            hs, cs = [], []
            for gx_t in gx.unbind(1):  # (dirs, B, 4H)
                h, c = lstm_update(gx_t + torch.matmul(h.to(dtype), w_hh_t), c)
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


class FastRNNEncoder(RNNEncoder):
    """RNNEncoder whose LSTM trains on CPU through `lstm_steps`."""

    def recur(self, emb: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        if runs_steps(self.rnn, emb):
            return lstm_steps(self.rnn, emb, mask)
        return super().recur(emb, mask)
