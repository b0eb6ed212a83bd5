"""Attention read as a word alignment: pieces merged into words, and how monotonic it is
(Bahdanau 2014 section 5.2.1 and Figure 3: mostly diagonal, with local reorderings)."""

from __future__ import annotations

import dataclasses

import numpy as np

WORD_START = "\u2581"  # SentencePiece's mark of a piece that begins a word


def word_groups(tokens: list[str]) -> list[list[int]]:
    """The token indices of each word: a SentencePiece piece starting with '▁' (or '</s>')
    begins a word, any other piece continues the last one; tokens of a word vocabulary, which
    carry no mark, are each a word."""
    if not any(t.startswith(WORD_START) for t in tokens):
        return [[i] for i in range(len(tokens))]
    groups: list[list[int]] = []
    for i, token in enumerate(tokens):
        if not groups or token.startswith(WORD_START) or token == "</s>":
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def word_text(tokens: list[str], group: list[int]) -> str:
    """The word that a group of SentencePiece pieces spells."""
    return "".join(tokens[i] for i in group).replace(WORD_START, "") or WORD_START


def word_weights(
    weights: np.ndarray, src_tokens: list[str], tgt_tokens: list[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Piece-level attention (T, S) -> word-level (T_w, S_w) and the words on each axis: a
    source word gets the sum of its pieces' weights (each row still sums to what it did), a
    target word the mean of its pieces' rows."""
    src_groups, tgt_groups = word_groups(src_tokens), word_groups(tgt_tokens)
    columns = np.stack([weights[:, g].sum(axis=1) for g in src_groups], axis=1)  # (T, S_w)
    merged = np.stack([columns[g].mean(axis=0) for g in tgt_groups])  # (T_w, S_w)
    return (
        merged,
        [word_text(src_tokens, g) for g in src_groups],
        [word_text(tgt_tokens, g) for g in tgt_groups],
    )


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of x, ties sharing their mean rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation of x and y; None when either is constant or too short."""
    if len(x) < 2:
        return None
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclasses.dataclass(frozen=True)
class Monotonicity:
    """How diagonal one sentence's word alignment is.

    Attributes:
        rho: Spearman correlation of each target word's position with the position of the
            source word it attends to most (None for a one-word output).
        backward: the fraction of target words whose most-attended source word lies before the
            previous target word's (local reorderings).
    """

    rho: float | None
    backward: float


def monotonicity(weights: np.ndarray) -> Monotonicity:
    """weights (T_w, S_w) of real words only (no </s> row or column)."""
    peaks = weights.argmax(axis=1)  # (T_w,)
    steps = np.diff(peaks)
    backward = float((steps < 0).mean()) if len(steps) else 0.0
    return Monotonicity(spearman(np.arange(len(peaks)), peaks), backward)
