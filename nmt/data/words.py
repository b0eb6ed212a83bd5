"""Word-level vocabularies, as in both papers: the K most frequent words of each language, every
other word <unk>. Text is split and rejoined by the Moses tokenizer and detokenizer (sacremoses)."""

from __future__ import annotations

import collections
import json
import logging
from pathlib import Path

from sacremoses import MosesDetokenizer, MosesTokenizer

from nmt.config import TokenizerConfig
from nmt.data import Corpus
from nmt.data.cache import checked, seal
from nmt.data.specials import BOS, EOS, PAD, SPECIALS, UNK, fingerprint
from nmt.files import write_text

log = logging.getLogger(__name__)

assert [SPECIALS.index(s) for s in SPECIALS] == [UNK, BOS, EOS, PAD]


class Vocabulary:
    """One language's words: Moses tokens in, ids out."""

    def __init__(self, lang: str, words: list[str]) -> None:
        self.lang, self.words = lang, words
        self.index = {w: i for i, w in enumerate(words)}
        self.moses = MosesTokenizer(lang=lang)
        self.detok = MosesDetokenizer(lang=lang)

    def tokenize(self, line: str) -> list[str]:
        return self.moses.tokenize(line, escape=False)

    def encode(self, line: str) -> list[int]:
        return [self.index.get(w, UNK) for w in self.tokenize(line)]


def top_words(lines: list[str], lang: str, size: int) -> list[str]:
    """The specials, then the `size` most frequent Moses tokens (ties: first seen first)."""
    counts = collections.Counter(w for line in lines for w in Vocabulary(lang, []).tokenize(line))
    return SPECIALS + [w for w, _ in counts.most_common(size) if w not in SPECIALS]


class WordTokenizer:
    """Top-K word vocabularies per language (see nmt.data.spm.Tokenizer for the interface)."""

    kind = "word"

    def __init__(self, src: Vocabulary, tgt: Vocabulary) -> None:
        self.src, self.tgt = src, tgt
        self.identity = fingerprint(src.lang, *src.words, "\t", tgt.lang, *tgt.words)

    joint = False  # a vocabulary per language: source and target ids name other words

    @classmethod
    def train(cls, corpus: Corpus, cfg: TokenizerConfig, cache: Path) -> WordTokenizer:
        langs = (cfg.src_lang, cfg.tgt_lang)
        key = fingerprint(str(cfg.vocab_size), *langs, *corpus.train.src, "\t", *corpus.train.tgt)
        path = cache / "word" / f"{cfg.vocab_size}-{key}.json"
        words = checked(path, _word_lists)
        if words is not None:
            log.info("tokenizer: reusing %s", path)
        else:
            log.info("tokenizer: counting words of %d training pairs", len(corpus.train))
            words = [
                top_words(corpus.train.src, langs[0], cfg.vocab_size),
                top_words(corpus.train.tgt, langs[1], cfg.vocab_size),
            ]
            write_text(path, json.dumps(words))
            seal(path)
        return cls(Vocabulary(langs[0], words[0]), Vocabulary(langs[1], words[1]))

    def state(self) -> dict:
        return {
            "kind": self.kind,
            "src_lang": self.src.lang,
            "tgt_lang": self.tgt.lang,
            "src_words": self.src.words,
            "tgt_words": self.tgt.words,
            "identity": self.identity,
        }

    @classmethod
    def from_state(cls, state: dict) -> WordTokenizer:
        return cls(
            Vocabulary(state["src_lang"], state["src_words"]),
            Vocabulary(state["tgt_lang"], state["tgt_words"]),
        )

    @property
    def src_vocab_size(self) -> int:
        return len(self.src.words)

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.tgt.words)

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        return [self.src.encode(line) + [EOS] for line in lines]

    def encode_tgt(self, lines: list[str]) -> list[list[int]]:
        return [[BOS] + self.tgt.encode(line) + [EOS] for line in lines]

    def src_tokens(self, line: str) -> list[str]:
        return self.src.tokenize(line) + ["</s>"]

    def tgt_tokens(self, ids: list[int]) -> list[str]:
        return [self.tgt.words[i] for i in ids]

    def detokenize(self, tokens: list[str]) -> str:
        return self.tgt.detok.detokenize(tokens)

    def decode_tgt(self, ids: list[int]) -> str:
        return self.detokenize(self.tgt_tokens([i for i in ids if i not in (BOS, EOS, PAD)]))


def _word_lists(path: Path) -> list[list[str]]:
    """A word cache entry: the source's and the target's words, most frequent first."""
    words = json.loads(path.read_text(encoding="utf-8"))
    if not (
        isinstance(words, list)
        and len(words) == 2
        and all(isinstance(w, list) and all(isinstance(x, str) for x in w) for w in words)
    ):
        raise ValueError("not two lists of words")
    return words
