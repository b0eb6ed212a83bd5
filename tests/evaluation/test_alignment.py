"""Attention as a word alignment: pieces merge into words without losing weight, and the
monotonicity measures read a diagonal as 1 and a reversal as -1."""

import numpy as np
import pytest

from nmt.evaluation.alignment import monotonicity, spearman, word_groups, word_weights


def test_pieces_group_into_words_and_word_tokens_stay_alone():
    assert word_groups(["▁the", "▁house", "s", "</s>"]) == [[0], [1, 2], [3]]
    assert word_groups(["▁l", "'", "▁homme", "</s>"]) == [[0, 1], [2], [3]]
    assert word_groups(["the", "houses", "</s>"]) == [[0], [1], [2]]


def test_word_weights_sum_source_pieces_and_average_target_pieces():
    rng = np.random.default_rng(0)
    weights = rng.random((4, 5))
    weights /= weights.sum(1, keepdims=True)  # (T, S) rows sum to 1
    src = ["▁a", "b", "▁c", "▁d", "</s>"]
    tgt = ["▁x", "y", "▁z", "</s>"]
    words, src_words, tgt_words = word_weights(weights, src, tgt)
    assert src_words == ["ab", "c", "d", "</s>"] and tgt_words == ["xy", "z", "</s>"]
    assert words.shape == (3, 4)
    np.testing.assert_allclose(words.sum(1), 1.0)
    np.testing.assert_allclose(words[0, 0], (weights[0, :2].sum() + weights[1, :2].sum()) / 2)
    np.testing.assert_allclose(words[1], [weights[2, :2].sum(), *weights[2, 2:]])


def test_spearman_matches_its_definition_with_ties():
    x, y = np.array([1, 2, 3, 4, 5]), np.array([2, 1, 4, 3, 5])
    d = np.array([1, -1, 1, -1, 0])
    assert spearman(x, y) == pytest.approx(1 - 6 * (d**2).sum() / (5 * (25 - 1)))
    # ties share their mean rank: Pearson correlation of the ranks [0, 1.5, 1.5, 3] and 0..3
    ranks = np.array([0, 1.5, 1.5, 3])
    want = np.corrcoef(ranks, np.arange(4))[0, 1]
    assert spearman(np.arange(4), np.array([0, 7, 7, 9])) == pytest.approx(want)
    assert spearman(np.arange(3), np.array([2, 2, 2])) is None
    assert spearman(np.arange(1), np.arange(1)) is None


def test_a_diagonal_is_monotonic_and_a_reversal_is_not():
    diagonal = monotonicity(np.eye(5))
    assert diagonal.rho == pytest.approx(1.0) and diagonal.backward == 0.0
    reversed_ = monotonicity(np.eye(5)[::-1])
    assert reversed_.rho == pytest.approx(-1.0) and reversed_.backward == 1.0
    swap = np.eye(4)[[0, 2, 1, 3]]  # one local reordering (adjective-noun)
    measure = monotonicity(swap)
    assert 0.5 < measure.rho < 1.0 and measure.backward == pytest.approx(1 / 3)
    assert monotonicity(np.ones((1, 3)) / 3).rho is None
