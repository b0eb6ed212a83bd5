"""Greedy and beam search's picks on CPU: each row's best value, or k best, read block by block
instead of one column at a time. Both equal torch's max and topk (among ties topk's order may
differ, which torch leaves unspecified)."""

from __future__ import annotations

from torch import Tensor

ARGMAX_BLOCK = 64  # columns per block of `max_over_last` and `topk_over_last`


def max_over_last(x: Tensor) -> tuple[Tensor, Tensor]:
    """x.max(-1) of x (nb, V): each row's largest value and the index of its first occurrence
    (NaN counting as largest, as torch's). On CPU torch's max with indices is a scalar loop,
    many times slower than amax, which is vectorised: here each row's blocks of ARGMAX_BLOCK
    columns are reduced with amax, and only the first block holding the maximum is searched
    with argmax. Elsewhere, or where V is not a
    multiple of the block, it is torch's own."""
    nb, V = x.shape
    if x.device.type != "cpu" or V % ARGMAX_BLOCK:
        return x.max(-1)
    blocks = x.view(nb, V // ARGMAX_BLOCK, ARGMAX_BLOCK)
    best, block = blocks.amax(-1).max(-1)  # (nb,): the first block holding the maximum
    inside = blocks.gather(1, block.view(nb, 1, 1).expand(nb, 1, ARGMAX_BLOCK)).squeeze(1)
    return best, block * ARGMAX_BLOCK + inside.argmax(-1)


def topk_over_last(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """x.topk(k, -1) of x (nb, N): the k largest values of each row, largest first, and their
    indices (among equal values the indices may differ from torch's, whose order among ties is
    unspecified). On CPU torch's topk reads every column one at a time: here the k largest lie
    in the k blocks of ARGMAX_BLOCK columns with the largest maxima, so only those k x
    ARGMAX_BLOCK columns are searched. Elsewhere, or where N is not a multiple of the block, it
    is torch's own."""
    nb, N = x.shape
    if x.device.type != "cpu" or N % ARGMAX_BLOCK or k > N // ARGMAX_BLOCK:
        return x.topk(k, dim=-1)
    blocks = x.view(nb, N // ARGMAX_BLOCK, ARGMAX_BLOCK)
    _, chosen = blocks.amax(-1).topk(k, dim=-1)  # (nb, k): the blocks holding the k largest
    inside = blocks.gather(1, chosen.unsqueeze(-1).expand(nb, k, ARGMAX_BLOCK))  # (nb, k, B)
    top, j = inside.flatten(1).topk(k, dim=-1)  # j indexes the k x B gathered columns
    return top, chosen.gather(1, j // ARGMAX_BLOCK) * ARGMAX_BLOCK + j % ARGMAX_BLOCK
