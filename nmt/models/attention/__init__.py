"""Attention variants behind one interface (docs/design.md, The interfaces):

    keys = attn.project_keys(memory)                      # pure; the decoder keeps it as a local
    context, weights = attn(query, keys, memory, mask, step=t)

query (B, Dq) at one step, or (B, T, Dq) for a whole sequence; memory (B, S, Dk) encoder states in
source order; mask (B, S) bool, True at real tokens; context (B, Dk) or (B, T, Dk); weights (B, S)
or (B, T, S), >= 0, exactly 0 at padding, summing to 1 over real positions.

Each variant is one small module; the shared maths are the free functions of `interface`. A
variant may also keep a state across the steps of one sentence (nmt.models.attention.stateful:
NTM addressing, coverage). It declares it with

    state = attn.initial_state(memory, mask)              # tuple of (B, ...) tensors
    context, weights, state = attn(query, keys, memory, mask, step=t, state=state)

where a (B, T, Dq) query is T independent queries of one step (the beams of a sentence), each
with its own state, (B, T, ...). Decoders carry it at the end of their own state tuple, so
search reorders and prunes it with the rest; they reach every variant through `attend`,
`attention_state` and `is_stateful` below, and stateless variants keep their signature and
their whole-sequence form.

Modules: `interface` (the plumbing above and the base classes), `scores` (score(h_t, h_s)),
`fixed` (none), `bahdanau`, `luong` (global and location), `local` (local-m, local-p),
`multihead`, `hard`, `stateful` (NTM addressing, coverage). Configs name the classes by their
short path here (`nmt.models.attention.GlobalAttention`).
"""

from nmt.models.attention.bahdanau import BahdanauAttention
from nmt.models.attention.fixed import NoAttention
from nmt.models.attention.hard import HardAttention
from nmt.models.attention.interface import (
    Attention,
    PassRecord,
    ScoredAttention,
    as_sequence,
    attend,
    attention_state,
    finish,
    is_stateful,
    masked_softmax,
    project_keys,
    takes_record,
    weighted_sum,
)
from nmt.models.attention.local import LocalMAttention, LocalPAttention
from nmt.models.attention.luong import GlobalAttention, LocationAttention
from nmt.models.attention.multihead import MultiHeadAttention
from nmt.models.attention.scores import (
    ConcatScore,
    CosineScore,
    DotScore,
    GeneralScore,
    KernelScore,
    ProjectedScaledDotScore,
    ScaledDotScore,
)
from nmt.models.attention.stateful import CoverageAttention, NTMAttention

__all__ = [
    "Attention",
    "BahdanauAttention",
    "ConcatScore",
    "CosineScore",
    "CoverageAttention",
    "DotScore",
    "GeneralScore",
    "GlobalAttention",
    "HardAttention",
    "KernelScore",
    "LocalMAttention",
    "LocalPAttention",
    "LocationAttention",
    "MultiHeadAttention",
    "NTMAttention",
    "NoAttention",
    "PassRecord",
    "ProjectedScaledDotScore",
    "ScaledDotScore",
    "ScoredAttention",
    "as_sequence",
    "attend",
    "attention_state",
    "finish",
    "is_stateful",
    "masked_softmax",
    "project_keys",
    "takes_record",
    "weighted_sum",
]
