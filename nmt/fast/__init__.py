"""The fast CPU layer: kernels that compute what the reference models compute, faster on CPU.

`accelerate(model)` is its one entry point. It turns the model's modules into their fast
subclasses in place (same parameters, same state_dict; nmt.fast.models): the LSTM encoder
trains through a padded loop (nmt.fast.encoder), teacher forcing forms the gradients of what
every step shares once over the steps (nmt.fast.step_sum), the output layer and loss run in
chunks (nmt.fast.loss), decoding multiplies by oneDNN-packed weights (nmt.fast.packed), and
search reads its picks block by block (nmt.fast.search). It also keeps freed memory in the
process (nmt.fast.allocator). A model that is not accelerated is the plain torch reference;
`fast=false` on the command line leaves it so. Each kernel has a test that it equals the
reference.
"""

from __future__ import annotations

import functools

from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from nmt.fast import packed
from nmt.fast.allocator import keep_freed_memory
from nmt.fast.encoder import FastRNNEncoder
from nmt.fast.models import FastLuongDecoder, FastSeq2Seq, PackedLinear
from nmt.models.decoder import LuongDecoder
from nmt.models.encoder import RNNEncoder
from nmt.models.seq2seq import Seq2Seq

FAST = {
    Seq2Seq: FastSeq2Seq,
    RNNEncoder: FastRNNEncoder,
    LuongDecoder: FastLuongDecoder,
    nn.Linear: PackedLinear,
}


@functools.cache
def _follow_optimizer_steps() -> None:
    """Remake the packs after every optimizer step: a fused step writes the weights without
    bumping their version counters (registered once per process)."""
    register_optimizer_step_post_hook(lambda optimizer, args, kwargs: packed.weights_changed())


def accelerate(model: Seq2Seq) -> Seq2Seq:
    """Put the fast layer on `model`, in place, and return it. Modules of other classes (a
    plugin's own) keep their reference code."""
    keep_freed_memory()
    _follow_optimizer_steps()
    for module in model.modules():
        fast = FAST.get(type(module))
        if fast is not None:
            module.__class__ = fast
    return model
