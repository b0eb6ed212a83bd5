"""The attention interface's plumbing: the functions through which the decoders reach every
variant (`attend`, `attention_state`, `is_stateful`, `project_keys`), the maths the variants
share, and their base classes. Shapes as in the package's docstring."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn


def as_sequence(query: Tensor) -> tuple[Tensor, bool]:
    """(B, Dq) -> (B, 1, Dq); (B, T, Dq) unchanged. Also says whether it was a single step."""
    return (query.unsqueeze(1), True) if query.dim() == 2 else (query, False)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with exact zeros where `mask` is False.

    Args:
        scores: (B, T, S) logits.
        mask: (B, S) or (B, T, S) bool, True where allowed (every row has at least one).
    """
    if mask.dim() == 2:
        mask = mask.unsqueeze(1)  # (B, 1, S)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def weighted_sum(weights: Tensor, memory: Tensor) -> Tensor:
    """(B, T, S) weights x (B, S, Dk) memory -> (B, T, Dk) contexts."""
    return torch.matmul(weights, memory)


def is_stateful(attention: nn.Module) -> bool:
    """Whether the variant keeps a state across steps (it has `initial_state`)."""
    return hasattr(attention, "initial_state")


def attention_state(attention: nn.Module, memory: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
    """The variant's state before the first step, (B, ...) tensors in the memory's precision;
    () for a stateless variant."""
    if not is_stateful(attention):
        return ()
    with torch.autocast(memory.device.type, enabled=False):
        return tuple(attention.initial_state(memory, mask))


class PassRecord:
    """What the modules with a loss term note during one teacher-forced pass, by module, for
    the model's loss-term hook (Seq2Seq.loss) to read back: handed to the pass and to the hook
    as an argument, so that no module keeps tensors between its forward and its loss term."""

    def __init__(self) -> None:
        self._notes: dict[int, list[Any]] = {}

    def note(self, module: nn.Module, value: Any) -> None:
        """Keep `value` for `module`'s loss term."""
        self._notes.setdefault(id(module), []).append(value)

    def notes(self, module: nn.Module) -> list[Any]:
        """What `module` noted in this pass, in order."""
        return self._notes.get(id(module), [])


def takes_record(attention: nn.Module) -> bool:
    """Whether the variant notes what its loss term needs in a `PassRecord` (`takes_record`)."""
    return bool(getattr(attention, "takes_record", False))


def attend(
    attention: nn.Module,
    query: Tensor,
    keys: Tensor,
    memory: Tensor,
    mask: Tensor,
    step,
    state: tuple[Tensor, ...] = (),
    record: PassRecord | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """attention(query, keys, memory, mask, step=step[, state=state]) -> context, weights and
    the new state (() for a stateless variant). At one step each memory row may serve k
    consecutive query rows (the k beams of a sentence in beam search), so the memory need not
    be copied per beam: query (B k, Dq), memory (B, S, Dk), state (B k, ...) -> context
    (B k, Dk), weights (B k, S), state (B k, ...). The k rows go through the whole-sequence
    form, as k queries at step `step` (an int), each with its own state. A teacher-forced
    pass hands its `record` to the variants that take one.

    Under autocast attention runs in the memory's precision (float32): its products are small,
    and their shapes change with every batch's source length, which in low precision would make
    oneDNN compile and keep another kernel for each shape."""
    if torch.is_autocast_enabled(memory.device.type):
        with torch.autocast(memory.device.type, enabled=False):
            query = query.to(memory.dtype)
            return attend(attention, query, keys, memory, mask, step, state, record)
    stateful = is_stateful(attention)
    call = attention  # a search (record None) calls the variant as it is
    if record is not None and takes_record(attention):
        call = functools.partial(attention, record=record)
    B = memory.size(0)
    if query.dim() != 2 or query.size(0) == B:
        if not stateful:
            return (*call(query, keys, memory, mask, step=step), ())
        return call(query, keys, memory, mask, step=step, state=state)
    query = query.view(B, -1, query.size(-1))  # (B, k, Dq)
    if not stateful:
        context, weights = call(query, keys, memory, mask, step=step)
        return context.flatten(0, 1), weights.flatten(0, 1), ()
    state = tuple(s.view(B, -1, *s.shape[1:]) for s in state)  # (B, k, ...)
    context, weights, state = call(query, keys, memory, mask, step=step, state=state)
    return context.flatten(0, 1), weights.flatten(0, 1), tuple(s.flatten(0, 1) for s in state)


def project_keys(attention: nn.Module, memory: Tensor) -> Tensor:
    """attention.project_keys(memory), in the memory's precision under autocast (as `attend`)."""
    with torch.autocast(memory.device.type, enabled=False):
        return attention.project_keys(memory)


def finish(context: Tensor, weights: Tensor, single_step: bool) -> tuple[Tensor, Tensor]:
    """The sequence form's context and weights back in the query's form (one step or T)."""
    if single_step:
        return context.squeeze(1), weights.squeeze(1)
    return context, weights


class Attention(nn.Module):
    """What the variants here share (a variant from elsewhere need not derive from it): the keys
    are the memory itself unless a variant projects them."""

    def project_keys(self, memory: Tensor) -> Tensor:
        """(B, S, Dk) memory -> keys (B, S, D'), computed once per batch."""
        return memory


class ScoredAttention(Attention):
    """A variant whose score function (`self.score`, Luong eq. (8)) projects the keys."""

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.score.project_keys(memory)
