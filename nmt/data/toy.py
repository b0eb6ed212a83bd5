"""A synthetic task for tests and demos: translate a random word sequence into its reverse."""

from __future__ import annotations

import random

from nmt.data import Corpus, Split


def load_toy_reverse(
    *, n_train: int, n_dev: int, n_test: int, min_len: int, max_len: int, vocab: int, seed: int
) -> Corpus:
    """The toy task: random word sequences and their reversals."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]

    def make(n: int) -> Split:
        src = [
            " ".join(rng.choice(words) for _ in range(rng.randint(min_len, max_len)))
            for _ in range(n)
        ]
        return Split(src, [" ".join(reversed(s.split())) for s in src])

    return Corpus(train=make(n_train), dev=make(n_dev), test=make(n_test))
