"""The fast layer's subclasses of the reference modules: the same parameters and state_dict,
the same arithmetic, faster kernels on CPU. `nmt.fast.accelerate` puts them on a model.

- `PackedLinear`: nn.Linear through a oneDNN-packed weight outside autograd (decoding).
- `FastLuongDecoder`: the search step's LSTM cells on packed weights, the first layer's
  embedding share of the gates read from a table of the ids met (nmt.fast.packed).
- `FastSeq2Seq`: teacher forcing with the encoder memory and the decoder's per-step weights
  constant over the steps (nmt.fast.step_sum), the output layer and loss in chunks
  (nmt.fast.loss), and search's picks block by block (nmt.fast.search).

The packs belong to this module, keyed by the module they serve, and are remade when their
weights change (`packed.weights_changed` runs after every optimizer step).
"""

from __future__ import annotations

import dataclasses
import weakref

import torch
from torch import Tensor, nn
from torch.func import functional_call

from nmt.data.batching import Batch
from nmt.devices import product_dtype
from nmt.fast import packed
from nmt.fast.loss import linear_cross_entropy
from nmt.fast.search import max_over_last, topk_over_last
from nmt.fast.step_sum import constant
from nmt.models.decoder import LuongDecoder
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq

_LINEAR_PACKS: weakref.WeakKeyDictionary[nn.Module, packed.Pack] = weakref.WeakKeyDictionary()
_CELL_PACKS: weakref.WeakKeyDictionary[nn.Module, list] = weakref.WeakKeyDictionary()


class PackedLinear(nn.Linear):
    """nn.Linear whose forward takes the packed path where `packed.usable`."""

    def forward(self, x: Tensor) -> Tensor:
        if not packed.usable(x):
            return super().forward(x)
        pack = _LINEAR_PACKS.get(self)
        if pack is None:
            pack = _LINEAR_PACKS[self] = packed.Pack()
        sources = (self.weight,) if self.bias is None else (self.weight, self.bias)
        weights = pack.get(lambda: (self.weight, self.bias), *sources, dtype=product_dtype(x))
        return packed.linear(x, weights)


class FastLuongDecoder(LuongDecoder):
    """LuongDecoder whose search steps run their LSTM cells on packed weights (CPU)."""

    def cells(
        self, y_prev: Tensor, feed: Tensor, h: Tensor, c: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        if self.training or not packed.usable(feed):
            return super().cells(y_prev, feed, h, c)
        rest = feed if self.input_feed else feed[:, :0]  # the first layer's input after E y
        if packed.table_usable(rest, self.embedding.weight, 4 * self.output_size):
            return self.packed_cells(rest, h, c, y=y_prev)
        return self.packed_cells(torch.cat([self.embedding(y_prev), rest], dim=-1), h, c)

    def packed_cells(
        self, x: Tensor, h: Tensor, c: Tensor, y: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`cell_step` on packed weights: x (B, I), h and c (B, L, H) -> top output (B, H), h, c.
        Given the ids y (B,), x is the first layer's input after its embedding part, whose share
        of the gates comes from a table (`packed.lstm_cell_from_ids`)."""
        packs = _CELL_PACKS.get(self)
        if packs is None:
            packs = _CELL_PACKS[self] = [packed.CellPack() for _ in range(self.num_layers)]
        hs, cs = [], []
        for layer in range(self.num_layers):
            weights = self.lstm.all_weights[layer]  # W_ih, W_hh[, b_ih, b_hh]
            h_l, c_l = h[:, layer], c[:, layer]
            if layer == 0 and y is not None:
                x, c_l = packed.lstm_cell_from_ids(
                    y, x, h_l, c_l, packs[0], self.embedding.weight, *weights
                )
            elif len(weights) == 4:
                x, c_l = packed.lstm_cell(x, h_l, c_l, packs[layer], *weights)
            else:
                x, c_l = torch.lstm_cell(x, (h_l, c_l), *weights)
            hs.append(x)
            cs.append(c_l)
        return x, torch.stack(hs, dim=1), torch.stack(cs, dim=1)


def step_weights(decoder: nn.Module) -> dict[str, Tensor]:
    """The decoder parameters that every teacher-forced step multiplies by, as constants over
    the steps (cast once to autocast's dtype where it is on; biases only cast): the LSTM's and
    W_c of a Luong decoder with input feeding, on CPU. None for other decoders."""
    if not isinstance(decoder, LuongDecoder) or not decoder.input_feed:
        return {}
    device = decoder.W_c.weight.device.type
    if device != "cpu":  # CUDA keeps its fused cell
        return {}
    dtype = product_dtype(decoder.W_c.weight)
    names = [f"lstm.{name}" for layer in decoder.lstm._all_weights for name in layer]
    weights = {}
    for name in [*names, "W_c.weight"]:
        w = decoder.get_parameter(name)
        w = w if w.dtype == dtype else w.to(dtype)
        weights[name] = constant(w) if w.dim() == 2 else w
    return weights


class FastSeq2Seq(Seq2Seq):
    """Seq2Seq with the fast layer's teacher forcing, loss and search picks."""

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed token cross-entropy, as Seq2Seq.loss computes it (nmt.fast.loss); a model
        with loss terms (Seq2Seq.loss_terms) takes the reference loss, which gives them each
        token's NLL, and so does a copying model, whose distribution is not one softmax."""
        if self.loss_terms() or self.pointer is not None:
            return super().loss(batch, label_smoothing)
        features = self.teacher_forced(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        return linear_cross_entropy(
            features[batch.tgt_mask],  # (N real tokens, H)
            self.generator.weight,
            self.generator.bias,
            batch.tgt_out[batch.tgt_mask],
            label_smoothing,
        )

    def teacher_forced(self, enc: EncoderOutput, tgt_in: Tensor) -> Tensor:
        """The decoder's features (B, T, H) under teacher forcing; with gradients, the memory
        and the per-step weights are constants over the steps (nmt.fast.step_sum)."""
        if not torch.is_grad_enabled():
            return self.decoder(enc, tgt_in)[0]
        enc = dataclasses.replace(enc, memory=constant(enc.memory))
        weights = step_weights(self.decoder)
        if not weights:
            return self.decoder(enc, tgt_in)[0]
        return functional_call(self.decoder, weights, (enc, tgt_in), strict=False)[0]

    def best_tokens(self, logp: Tensor) -> tuple[Tensor, Tensor]:
        return max_over_last(logp)

    def best_candidates(self, scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
        return topk_over_last(scores, k)
