"""SentencePiece subword models trained on the training split and cached by content hash, and the
`Tokenizer` of a pair of them (nmt.data.tokenizer encodes a corpus with it, through
`datasets.map`, whose Arrow cache is reused too)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
from pathlib import Path

import sentencepiece as spm

from nmt.config import TokenizerConfig
from nmt.data import Corpus
from nmt.data.cache import checked, seal
from nmt.data.specials import BOS, EOS, PAD, UNK, fingerprint
from nmt.files import atomic_write

log = logging.getLogger(__name__)


def train_spm(lines: list[str], cfg: TokenizerConfig, cache: Path) -> bytes:
    """Train (or load from `cache`) a SentencePiece model on `lines`; returns its proto."""
    settings = json.dumps(dataclasses.asdict(cfg) | {"joint": None}, sort_keys=True)
    path = (
        cache / "spm" / f"{cfg.model_type}-{cfg.vocab_size}-{fingerprint(settings, *lines)}.model"
    )
    cached = checked(path, lambda p: loadable(p.read_bytes()))
    if cached is not None:
        log.info("tokenizer: reusing %s", path)
        return cached
    log.info("tokenizer: training %s %d on %d lines", cfg.model_type, cfg.vocab_size, len(lines))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type=cfg.model_type,
        vocab_size=cfg.vocab_size,
        character_coverage=cfg.character_coverage,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        hard_vocab_limit=False,  # tiny corpora (tests) may have fewer pieces than asked for
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )
    atomic_write(path, lambda f: f.write(model.getvalue()))
    seal(path)
    return model.getvalue()


def loadable(proto: bytes) -> bytes:
    """`proto` if SentencePiece loads it (it raises otherwise)."""
    spm.SentencePieceProcessor(model_proto=proto)
    return proto


class Tokenizer:
    """Source and target SentencePiece models (the same one when the vocabulary is joint).

    Every tokenizer (see also nmt.data.words) offers the same calls: encode_src / encode_tgt
    (source ids end with </s>; target ids are wrapped in <s> ... </s>), src_tokens (the source
    tokens behind the ids, </s> included), tgt_tokens, detokenize, decode_tgt, state (what a
    checkpoint keeps) and identity (a hash of that state).
    """

    kind = "spm"

    def __init__(self, src_model: bytes, tgt_model: bytes) -> None:
        self.src_model, self.tgt_model = src_model, tgt_model
        self.src = spm.SentencePieceProcessor(model_proto=src_model)
        self.tgt = spm.SentencePieceProcessor(model_proto=tgt_model)
        self.identity = fingerprint(src_model, tgt_model)

    def state(self) -> dict:
        return {
            "kind": self.kind,
            "src": self.src_model,
            "tgt": self.tgt_model,
            "identity": self.identity,
        }

    @classmethod
    def train(cls, corpus: Corpus, cfg: TokenizerConfig, cache: Path) -> Tokenizer:
        train = corpus.train
        if cfg.joint:
            model = train_spm(train.src + train.tgt, cfg, cache)
            return cls(model, model)
        return cls(train_spm(train.src, cfg, cache), train_spm(train.tgt, cfg, cache))

    @property
    def joint(self) -> bool:
        """Whether source and target share one model, so that their ids mean the same pieces."""
        return self.src_model == self.tgt_model

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        return [ids + [EOS] for ids in self.src.encode(lines)]

    def encode_tgt(self, lines: list[str]) -> list[list[int]]:
        return [[BOS] + ids + [EOS] for ids in self.tgt.encode(lines)]

    def src_tokens(self, line: str) -> list[str]:
        return self.src.encode(line, out_type=str) + ["</s>"]

    def tgt_tokens(self, ids: list[int]) -> list[str]:
        return [self.tgt.id_to_piece(i) for i in ids]

    def detokenize(self, tokens: list[str]) -> str:
        return self.tgt.decode_pieces(tokens)

    def decode_tgt(self, ids: list[int]) -> str:
        return self.tgt.decode([i for i in ids if i not in (BOS, EOS, PAD)])
