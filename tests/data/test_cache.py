"""The tokenizer and encoding caches check themselves: an entry changed after it was written,
or one that does not load, is rebuilt with a log line naming it, never used."""

import logging

import pytest

from nmt.config import TokenizerConfig, defaults
from nmt.data import Corpus, Split
from nmt.data.cache import digest_path
from nmt.data.spm import Tokenizer
from nmt.data.tokenizer import encode_split
from nmt.data.words import WordTokenizer

LINES_EN = [f"the cat number {i} sat on the mat" for i in range(200)]
LINES_FR = [f"le chat numéro {i} était assis sur le tapis" for i in range(200)]


@pytest.fixture
def corpus():
    split = Split(LINES_EN, LINES_FR)
    return Corpus(train=split, dev=split, test=split)


def encoded(tok, split, cache) -> tuple[list, list]:
    """encode_split's ids as plain lists (its columns map the cache file)."""
    src, tgt = encode_split(tok, split, cache)
    return [list(x) for x in src], [list(x) for x in tgt]


def flip_a_bit(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 1
    path.write_bytes(bytes(data))


def test_an_arrow_entry_changed_after_it_was_written_is_rebuilt(corpus, tmp_path, caplog):
    tok = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=60), tmp_path)
    ids = encoded(tok, corpus.train, tmp_path)
    [arrow] = (tmp_path / "arrow").glob("*.arrow")
    assert digest_path(arrow).is_file()
    for at in (0.5, 0.6, 0.7):  # bit flips in the data, which may keep every id in range
        flip_a_bit(arrow, at)
        with caplog.at_level(logging.WARNING):
            assert encoded(tok, corpus.train, tmp_path) == ids
        assert f"cache: {arrow} does not match its digest; rebuilding it" in caplog.text
        caplog.clear()


def test_garbage_in_an_entry_without_a_digest_is_rebuilt(corpus, tmp_path, caplog):
    tok = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=60), tmp_path)
    ids = encoded(tok, corpus.train, tmp_path)
    [arrow] = (tmp_path / "arrow").glob("*.arrow")
    digest_path(arrow).unlink()  # an entry written before the caches had digests
    arrow.write_bytes(b"not arrow at all")
    with caplog.at_level(logging.WARNING):
        assert encoded(tok, corpus.train, tmp_path) == ids
    assert f"cache: {arrow} does not load" in caplog.text


def test_an_entry_without_a_digest_that_loads_is_kept_and_given_one(corpus, tmp_path):
    cfg = defaults(TokenizerConfig, vocab_size=60)
    first = Tokenizer.train(corpus, cfg, tmp_path)
    [model] = (tmp_path / "spm").glob("*.model")
    digest_path(model).unlink()
    stamp = model.stat().st_mtime_ns
    assert Tokenizer.train(corpus, cfg, tmp_path).identity == first.identity
    assert model.stat().st_mtime_ns == stamp and digest_path(model).is_file()


@pytest.mark.parametrize("sealed", [True, False])
def test_a_truncated_tokenizer_model_is_retrained(corpus, tmp_path, caplog, sealed):
    cfg = defaults(TokenizerConfig, vocab_size=60)
    first = Tokenizer.train(corpus, cfg, tmp_path)
    [model] = (tmp_path / "spm").glob("*.model")
    if not sealed:
        digest_path(model).unlink()
    model.write_bytes(model.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        assert Tokenizer.train(corpus, cfg, tmp_path).identity == first.identity
    why = "does not match its digest" if sealed else "does not load"
    assert f"cache: {model} {why}" in caplog.text


def test_a_damaged_word_list_is_recounted(corpus, tmp_path, caplog):
    cfg = defaults(
        TokenizerConfig, model_type="word", vocab_size=50, joint=False, src_lang="en", tgt_lang="fr"
    )
    first = WordTokenizer.train(corpus, cfg, tmp_path)
    [words] = (tmp_path / "word").glob("*.json")
    digest_path(words).unlink()
    words.write_text('[["the"], 7]')  # JSON, but not two word lists
    with caplog.at_level(logging.WARNING):
        assert WordTokenizer.train(corpus, cfg, tmp_path).identity == first.identity
    assert f"cache: {words} does not load (ValueError: not two lists of words)" in caplog.text
