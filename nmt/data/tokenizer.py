"""Tokenizers by kind: SentencePiece subwords (nmt.data.spm) or word vocabularies
(nmt.data.words), built from the training split or rebuilt from a checkpoint, and the cached
encoding of a corpus split."""

from __future__ import annotations

from pathlib import Path

from nmt.config import TokenizerConfig
from nmt.data import Corpus, Split
from nmt.data.cache import checked, digest_path, seal
from nmt.data.specials import fingerprint
from nmt.data.spm import Tokenizer
from nmt.data.words import WordTokenizer


def build_tokenizer(corpus: Corpus, cfg: TokenizerConfig, cache: Path):
    """Train (or reuse from `cache`) the tokenizer `cfg` describes on the training split."""
    if cfg.model_type == "word":
        return WordTokenizer.train(corpus, cfg, cache)
    return Tokenizer.train(corpus, cfg, cache)


def load_tokenizer(state: dict):
    """Rebuild a tokenizer from the `state()` a checkpoint keeps."""
    if state.get("kind", "spm") == "word":
        return WordTokenizer.from_state(state)
    return Tokenizer(state["src"], state["tgt"])


def encode_split(tokenizer: Tokenizer, split: Split, cache: Path) -> tuple[list, list]:
    """Token ids of a split's sources and primary references, through a cached `datasets.map`.

    Returns:
        (src_ids, tgt_ids): lists of id lists, line-aligned with the split.
    """
    import datasets

    key = fingerprint(tokenizer.identity, *split.src, "\t", *split.tgt)
    path = cache / "arrow" / f"{key}.arrow"
    path.parent.mkdir(parents=True, exist_ok=True)

    def encode(batch: dict) -> dict:
        return {
            "src_ids": tokenizer.encode_src(batch["src"]),
            "tgt_ids": tokenizer.encode_tgt(batch["tgt"]),
        }

    def load(p: Path) -> None:  # a damaged file raises here, or has other rows or columns
        rows = datasets.Dataset.from_file(str(p))
        if rows.num_rows != len(split.src) or set(rows.column_names) != {"src_ids", "tgt_ids"}:
            raise ValueError(f"{rows.num_rows} rows of {rows.column_names}")

    checked(path, load)
    datasets.disable_progress_bars()
    table = datasets.Dataset.from_dict({"src": split.src, "tgt": split.tgt})
    encoded = table.map(
        encode,
        batched=True,
        batch_size=2000,
        cache_file_name=str(path),
        remove_columns=["src", "tgt"],
        new_fingerprint=key,
    )
    if not digest_path(path).is_file():
        seal(path)
    return encoded["src_ids"], encoded["tgt_ids"]
