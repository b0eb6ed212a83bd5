from nmt.config import TokenizerConfig, defaults
from nmt.data import Corpus, Split
from nmt.data.specials import BOS, EOS, UNK
from nmt.data.tokenizer import load_tokenizer
from nmt.data.words import WordTokenizer

EN = ["The cat sat on the mat.", "The dog sat.", "A cat, a dog!"]
FR = ["Le chat était assis sur le tapis.", "Le chien était assis.", "Un chat, un chien !"]


def corpus():
    split = Split(EN, FR)
    return Corpus(train=split, dev=split, test=split)


def config(size=4):
    return defaults(
        TokenizerConfig,
        model_type="word",
        vocab_size=size,
        joint=False,
        src_lang="en",
        tgt_lang="fr",
    )


def test_top_k_words_per_language_and_unk(tmp_path):
    tok = WordTokenizer.train(corpus(), config(4), tmp_path)
    assert tok.src_vocab_size == 8  # 4 specials + 4 words
    assert tok.src.words[4:] == ["The", "cat", "sat", "."]  # counts 2, ties in order of appearance
    ids = tok.encode_src(["The zebra sat."])[0]
    assert ids[-1] == EOS and UNK in ids
    assert tok.src_tokens("The zebra sat.") == ["The", "zebra", "sat", ".", "</s>"]


def test_moses_round_trip_and_checkpoint_state(tmp_path):
    tok = WordTokenizer.train(corpus(), config(100), tmp_path)
    ids = tok.encode_tgt([FR[2]])[0]
    assert ids[0] == BOS and ids[-1] == EOS and UNK not in ids
    assert tok.decode_tgt(ids) == FR[2]
    again = load_tokenizer(tok.state())
    assert again.identity == tok.identity and again.encode_tgt([FR[0]]) == tok.encode_tgt([FR[0]])


def test_vocabulary_is_cached(tmp_path):
    first = WordTokenizer.train(corpus(), config(5), tmp_path)
    assert len(list((tmp_path / "word").glob("*.json"))) == 1
    assert WordTokenizer.train(corpus(), config(5), tmp_path).identity == first.identity
