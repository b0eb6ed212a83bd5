"""The block-wise arg-max and top-k of the fast search (nmt/fast/search.py) against torch's."""

import pytest
import torch

from nmt.fast.search import ARGMAX_BLOCK, max_over_last, topk_over_last


@pytest.mark.parametrize("rows", [1, 3, 64])
@pytest.mark.parametrize("vocab", [8000, 8 * ARGMAX_BLOCK, 100])
def test_blocked_max_equals_torch_max(rows, vocab):
    """Values and first-occurrence indices as torch's max, with ties within and across blocks,
    NaN, and rows of -inf (a vocabulary of 100 takes torch's own path)."""
    g = torch.Generator().manual_seed(rows + vocab)
    x = torch.randn(rows, vocab, generator=g).round(decimals=1)  # many ties
    x[0, [vocab - 1, vocab // 2 + 1, vocab // 2]] = 9.0  # one maximum, in two blocks
    if rows > 1:
        x[1] = float("-inf")
    if rows > 2:
        x[2, [vocab - 3, 5, vocab // 3]] = float("nan")
    best, index = max_over_last(x)
    expected = x.max(-1)
    torch.testing.assert_close(best, expected.values, equal_nan=True)
    assert torch.equal(index, expected.indices)


@pytest.mark.parametrize("k", [1, 10, 8])
@pytest.mark.parametrize("columns", [40000, 8 * ARGMAX_BLOCK, 100])
def test_blocked_topk_equals_torch_topk(k, columns):
    """The values of torch's topk, largest first, at indices that hold them; without ties the
    same indices. The k largest of a row in one block, spread over k blocks, and rows of -inf
    but a few (a beam at its length limit)."""
    g = torch.Generator().manual_seed(k + columns)
    x = torch.randn(4, columns, generator=g)
    x[0, :k] += 10.0  # all in the first block
    x[1, torch.arange(k) * (columns // k)] += 10.0  # one per block, where k blocks allow
    x[2] = float("-inf")
    x[2, [3, columns - 1]] = 0.0
    top, index = topk_over_last(x, k)
    expected = x.topk(k, dim=-1)
    assert torch.equal(top, expected.values)
    assert torch.equal(x.gather(1, index), top)
    assert torch.equal(index[[0, 1, 3]], expected.indices[[0, 1, 3]])  # no ties there
