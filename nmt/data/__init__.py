"""Parallel corpora: every source (Bible database, text files, Hugging Face datasets, a toy task)
is loaded into the same `Corpus` of raw, whitespace-normalised sentences."""

from __future__ import annotations

import dataclasses
import logging

from omegaconf import DictConfig

from nmt.config import instantiate_or_fail
from nmt.errors import NmtError

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


@dataclasses.dataclass
class Split:
    """Line-aligned sentences of one split.

    Args:
        src: source sentences.
        tgt: primary reference translations.
        refs: extra references, each a list line-aligned with `tgt` (may be empty).
    """

    src: list[str]
    tgt: list[str]
    refs: list[list[str]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt) or any(len(r) != len(self.tgt) for r in self.refs):
            raise ValueError("a split's sources and references must be line-aligned")

    def __len__(self) -> int:
        return len(self.src)

    def select(self, keep: list[int]) -> Split:
        return Split(
            [self.src[i] for i in keep],
            [self.tgt[i] for i in keep],
            [[r[i] for i in keep] for r in self.refs],
        )


@dataclasses.dataclass
class Corpus:
    """A corpus's three splits."""

    train: Split
    dev: Split
    test: Split

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise NmtError(f"split '{name}' is not one of {', '.join(SPLITS)}")
        return getattr(self, name)


def normalize(text: str) -> str:
    """Collapse runs of whitespace; nothing else is changed."""
    return " ".join(text.split())


def n_words(text: str) -> int:
    """Whitespace-separated words of a sentence (the papers' length unit)."""
    return len(text.split())


def filter_by_length(split: Split, max_len: int | None) -> Split:
    """Keep pairs with at most `max_len` words on both sides (the papers' training filter)."""
    if max_len is None:
        return split
    keep = [
        i
        for i, (s, t) in enumerate(zip(split.src, split.tgt, strict=True))
        if n_words(s) <= max_len and n_words(t) <= max_len
    ]
    return split.select(keep)


def load_corpus(data_cfg: DictConfig) -> Corpus:
    """Load `data.corpus` (a `_target_` loader) and apply `data.max_len` to the training split."""
    corpus: Corpus = instantiate_or_fail(data_cfg.corpus, "data.corpus")
    for name in SPLITS:
        if len(corpus.split(name)) == 0:
            raise NmtError(f"data: the {name} split is empty")
    before = len(corpus.train)
    corpus.train = filter_by_length(corpus.train, data_cfg.max_len)
    log.info(
        "corpus: train %d pairs (%d dropped by max_len=%s), dev %d, test %d, extra refs %d",
        len(corpus.train),
        before - len(corpus.train),
        data_cfg.max_len,
        len(corpus.dev),
        len(corpus.test),
        len(corpus.test.refs),
    )
    return corpus
