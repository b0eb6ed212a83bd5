import pytest

from nmt.config import TokenizerConfig, defaults
from nmt.data import Corpus, Split
from nmt.data.specials import BOS, EOS
from nmt.data.spm import Tokenizer
from nmt.data.tokenizer import encode_split

LINES_EN = [f"the cat number {i} sat on the mat" for i in range(200)]
LINES_FR = [f"le chat numéro {i} était assis sur le tapis" for i in range(200)]


@pytest.fixture
def corpus():
    split = Split(LINES_EN, LINES_FR)
    return Corpus(train=split, dev=split, test=split)


def test_trained_once_then_reused_from_cache(corpus, tmp_path, monkeypatch):
    cfg = defaults(TokenizerConfig, vocab_size=60)
    first = Tokenizer.train(corpus, cfg, tmp_path)
    assert len(list((tmp_path / "spm").glob("*.model"))) == 1

    import sentencepiece

    def refuse(*args, **kwargs):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(sentencepiece.SentencePieceTrainer, "train", refuse)
    second = Tokenizer.train(corpus, cfg, tmp_path)
    assert second.identity == first.identity


def test_cache_key_changes_with_settings_and_text(corpus, tmp_path):
    a = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=60), tmp_path)
    b = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=70), tmp_path)
    other = Corpus(train=Split(LINES_EN[:100], LINES_FR[:100]), dev=corpus.dev, test=corpus.test)
    c = Tokenizer.train(other, defaults(TokenizerConfig, vocab_size=60), tmp_path)
    assert len({a.identity, b.identity, c.identity}) == 3
    assert len(list((tmp_path / "spm").glob("*.model"))) == 3


def test_separate_vocabularies_and_unigram(corpus, tmp_path):
    tok = Tokenizer.train(
        corpus,
        defaults(TokenizerConfig, model_type="unigram", vocab_size=60, joint=False),
        tmp_path,
    )
    assert tok.src_model != tok.tgt_model
    assert tok.decode_tgt(tok.encode_tgt([LINES_FR[3]])[0]) == LINES_FR[3]


def test_ids_wrap_sentences_and_round_trip(corpus, tmp_path):
    tok = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=60), tmp_path)
    src = tok.encode_src([LINES_EN[5]])[0]
    tgt = tok.encode_tgt([LINES_FR[5]])[0]
    assert src[-1] == EOS and BOS not in src
    assert tgt[0] == BOS and tgt[-1] == EOS
    assert tok.decode_tgt(tgt) == LINES_FR[5]


def test_encoding_goes_through_a_reused_arrow_cache(corpus, tmp_path):
    tok = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=60), tmp_path)
    src, tgt = encode_split(tok, corpus.train, tmp_path)
    files = list((tmp_path / "arrow").glob("*.arrow"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = encode_split(tok, corpus.train, tmp_path)
    assert again == (src, tgt) and files[0].stat().st_mtime_ns == stamp
    assert src[0] == tok.encode_src([LINES_EN[0]])[0]
