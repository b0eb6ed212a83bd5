"""Matrix products by a fixed weight through oneDNN, with the weight packed once: decoding's,
and training's products by a weight that stays fixed over a forward pass.

A decoding step multiplies a few rows by the same weights over and over. On CPU, oneDNN with the
weight reordered once into its blocked layout does this faster than torch.addmm, most of all at the
few rows of a search's last sentences (docs/performance.md). Outside autograd on CPU (decoding,
evaluation), the fast layer's linear layers and LSTM cells (nmt.fast.models) take that path. In
training on CPU, the teacher-forced steps' products by the weights they share (nmt.fast.step_sum)
and the loss's products by the output layer (nmt.fast.loss) take it too, each weight packed once
per forward pass; the rest of training, and other devices, take torch's own products. A decoding
pack is kept until the weight changes (a load or a foreach optimizer step bumps its version
counter; a fused optimizer step does not, so the fast layer calls `weights_changed` after every
optimizer step) and then redone.

Under CPU autocast (`decode.precision=bfloat16`) the products take autocast's dtype, as torch's
own would: the weights are packed in bfloat16 and the outputs are bfloat16. That path needs a
CPU with bfloat16 instructions; elsewhere autocast takes torch's products.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from nmt.devices import cpu_has_bfloat16, product_dtype
from nmt.fast.lstm import lstm_update

_generation = 0  # bumped by weights_changed: part of every pack's key


def weights_changed() -> None:
    """Say that weights may have changed in place without their version counters knowing
    (torch's fused optimizers write without bumping them): every pack is remade at its next
    use."""
    global _generation
    _generation += 1


@functools.cache
def available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether this torch build has oneDNN's packed linear in `dtype` (a private op; fall back if
    not); bfloat16 only on a CPU with bfloat16 instructions, where it is fast."""
    if dtype == torch.bfloat16 and not cpu_has_bfloat16():
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2, dtype=dtype), None)
        x = torch.ones(1, 2, dtype=dtype)
        out = torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return bool(out.eq(2).all())


def usable(x: Tensor) -> bool:
    """Whether x's product with a weight may take the packed path."""
    if not (x.device.type == "cpu" and not torch.is_grad_enabled()):
        return False
    dtype = product_dtype(x)
    return dtype in (torch.float32, torch.bfloat16) and available(dtype)


def usable_in_training(weight: Tensor) -> bool:
    """Whether products by `weight` (out, in), constant over one training forward pass (a weight
    the teacher-forced steps share, nmt.fast.step_sum; the output layer, nmt.fast.loss), may take
    the packed path: on CPU, in float32 or bfloat16 (the dtype autocast cast it to)."""
    return (
        weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.bfloat16)
        and available(weight.dtype)
    )


def reorder(weight: Tensor) -> Tensor:
    """weight (out, in) in oneDNN's blocked layout for `linear`, in its own dtype."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), None)


class Derived:
    """A tensor computed from source tensors, remade when any source changes (in-place updates
    bump a tensor's version counter), when the dtype asked for changes, or when
    `weights_changed` is called."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value = None

    def get(self, make: Callable[[], object], *sources: Tensor, dtype: torch.dtype = torch.float32):
        key = (_generation, dtype, *((id(s), s.data_ptr(), s._version) for s in sources))
        if key != self.key:
            self.value, self.key = make(), key
        return self.value


class Pack(Derived):
    """A weight W (out, in) and bias reordered for x W^T + b in one dtype (a `Derived`)."""

    def get(
        self,
        make: Callable[[], tuple[Tensor, Tensor | None]],
        *sources: Tensor,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, Tensor | None]:
        def pack() -> tuple[Tensor, Tensor | None]:
            weight, bias = make()
            return reorder(weight.to(dtype)), None if bias is None else bias.to(dtype).contiguous()

        return super().get(pack, *sources, dtype=dtype)


def linear(x: Tensor, pack: tuple[Tensor, Tensor | None]) -> Tensor:
    """x (..., in) -> (..., out) through a packed weight, in the weight's dtype."""
    weight, bias = pack
    shape = x.shape
    x = x.reshape(-1, shape[-1]).to(weight.dtype).contiguous()
    out = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return out.view(*shape[:-1], out.size(-1))


class CellPack:
    """An LSTM layer's gate weights, packed for `lstm_cell`: [W_ih W_hh] as one weight in
    float32; W_ih and W_hh apart in low precision. For `lstm_cell_from_ids`: the embedding's
    part of the gates as a table, and the other input columns of W_ih beside W_hh."""

    def __init__(self) -> None:
        self.joint, self.input, self.hidden = Pack(), Pack(), Pack()
        self.table, self.rest = GateTable(), Pack()


def lstm_cell(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    packs: CellPack,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
) -> tuple[Tensor, Tensor]:
    """torch.lstm_cell on the packed path: x (B, I), h and c (B, H) -> h', c' (B, H).

    In float32 the gates [i; f; g; o] = [W_ih W_hh] [x; h] + b_ih + b_hh are one product. Under
    autocast they are two low-precision products summed in that precision, as torch.lstm_cell
    computes them under autocast (and nmt.fast.step_sum a cell with constant weights): the
    paths round alike."""
    dtype = product_dtype(x)
    if dtype == torch.float32:
        pack = packs.joint.get(
            lambda: (torch.cat([w_ih, w_hh], dim=1), b_ih + b_hh), w_ih, w_hh, b_ih, b_hh
        )
        return lstm_update(linear(torch.cat([x, h], dim=1), pack), c)  # gates (B, 4H)
    input_part = linear(x, packs.input.get(lambda: (w_ih, b_ih), w_ih, b_ih, dtype=dtype))
    hidden_part = linear(h, packs.hidden.get(lambda: (w_hh, b_hh), w_hh, b_hh, dtype=dtype))
    return lstm_update(input_part + hidden_part, c)


TABLE_BYTES = 256 << 20  # the largest table `lstm_cell_from_ids` keeps


def table_usable(x: Tensor, embedding: Tensor, gates: int) -> bool:
    """Whether a cell whose input is [E y; x] may take `lstm_cell_from_ids`: on the packed path
    in float32, with a table of (vocabulary, gates) floats within TABLE_BYTES."""
    return (
        usable(x)
        and product_dtype(x) == torch.float32
        and embedding.size(0) * gates * 4 <= TABLE_BYTES
    )


class GateTable:
    """The embedding's share of an LSTM layer's gates, E W_ih[:, :m]^T + b_ih + b_hh (V, 4H),
    each row computed the first time its id is asked for (a decoding meets a fraction of the
    vocabulary, and rows never asked for are never written), all forgotten when a weight
    changes."""

    def __init__(self) -> None:
        self.state = Derived()  # (table (V, 4H), known (V,) bool, the packed W_ih[:, :m])

    def rows(
        self, y: Tensor, embedding: Tensor, w_ih: Tensor, b_ih: Tensor, b_hh: Tensor
    ) -> Tensor:
        """The table's rows y (B,): (B, 4H)."""
        (V, m), gates = embedding.shape, w_ih.size(0)

        def empty() -> tuple[Tensor, Tensor, tuple]:
            pack = reorder(w_ih[:, :m]), (b_ih + b_hh).contiguous()
            return torch.empty(V, gates), torch.zeros(V, dtype=torch.bool), pack

        table, known, pack = self.state.get(empty, embedding, w_ih, b_ih, b_hh)
        new = y[~known[y]]
        if new.numel():
            new = new.unique()
            table[new] = linear(embedding[new], pack)
            known[new] = True
        return table[y]


def lstm_cell_from_ids(
    y: Tensor,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    packs: CellPack,
    embedding: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
) -> tuple[Tensor, Tensor]:
    """`lstm_cell` in float32 of the input [E y; x], E the embedding (V, m): y (B,) ids, x
    (B, I - m), h and c (B, H) -> h', c' (B, H).

    The embedding's share of the gates comes from a `GateTable`, so a step multiplies only
    [x; h] by [W_ih[:, m:] W_hh]: in the benchmark's decoder 1,024 of the 1,280 input columns
    (docs/performance.md)."""
    m = embedding.size(1)
    pack = packs.rest.get(lambda: (torch.cat([w_ih[:, m:], w_hh], dim=1), None), w_ih, w_hh)
    gates = linear(torch.cat([x, h], dim=1), pack)  # (B, 4H)
    return lstm_update(gates.add_(packs.table.rows(y, embedding, w_ih, b_ih, b_hh)), c)
