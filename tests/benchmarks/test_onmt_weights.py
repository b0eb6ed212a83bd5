"""benchmarks/onmt_weights.py: OpenNMT-py's benchmark checkpoint as nmt weights."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from onmt_weights import EMBEDDING, convert, source_ids  # noqa: E402

from nmt.data.specials import EOS  # noqa: E402


class Pieces:
    """The slice of a SentencePiece processor that the conversion reads."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def get_piece_size(self) -> int:
        return len(self.pieces)

    def id_to_piece(self, i: int) -> str:
        return self.pieces[i]

    def encode(self, lines: list[str]) -> list[list[int]]:
        return [[self.pieces.index(w) for w in line.split()] for line in lines]


class Tokenizer:
    def __init__(self, pieces: list[str]) -> None:
        self.src = self.tgt = Pieces(pieces)

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        return [ids + [EOS] for ids in self.src.encode(lines)]


def test_rows_follow_piece_names_and_attention_is_transposed():
    ours = ["<unk>", "<s>", "</s>", "<pad>", "a", "b", "only_ours"]
    theirs = ["<unk>", "<blank>", "<s>", "</s>", "b", "only_theirs", "a"]
    g = torch.Generator().manual_seed(0)
    tensors = {
        EMBEDDING.format("encoder"): torch.randn(7, 3, generator=g),
        EMBEDDING.format("decoder"): torch.randn(7, 3, generator=g),
        "encoder.rnn.weight_ih_l0": torch.randn(8, 3, generator=g),
        "decoder.rnn.layers.0.weight_hh": torch.randn(16, 4, generator=g),
        "decoder.attn.linear_in.weight": torch.randn(4, 4, generator=g),
        "decoder.attn.linear_out.weight": torch.randn(4, 8, generator=g),
        "generator.weight": torch.randn(7, 4, generator=g),
        "generator.bias": torch.randn(7, generator=g),
    }
    state = convert({"tensors": tensors, "src": theirs, "tgt": theirs}, Tokenizer(ours))
    mapped = {
        "encoder.embedding.weight": EMBEDDING.format("encoder"),
        "decoder.embedding.weight": EMBEDDING.format("decoder"),
        "generator.weight": "generator.weight",
        "generator.bias": "generator.bias",
    }
    for name, theirs_name in mapped.items():
        got, source = state[name], tensors[theirs_name]
        for i, j in [(0, 0), (1, 2), (2, 3), (3, 1), (4, 6), (5, 4)]:  # <pad> is <blank>
            assert torch.equal(got[i], source[j])
    assert not state["encoder.embedding.weight"][6].any()  # a piece they lack: zero
    assert state["generator.bias"][6] == float("-inf")  # ... and never produced
    W_in = tensors["decoder.attn.linear_in.weight"]
    assert torch.equal(state["decoder.attention.score.W_a.weight"], W_in.t())
    assert torch.equal(state["decoder.W_c.weight"], tensors["decoder.attn.linear_out.weight"])
    assert torch.equal(state["encoder.rnn.weight_ih_l0"], tensors["encoder.rnn.weight_ih_l0"])
    assert torch.equal(
        state["decoder.lstm.weight_hh_l0"], tensors["decoder.rnn.layers.0.weight_hh"]
    )


def test_source_ids_leave_out_the_end_of_sentence():
    tokenizer = Tokenizer(["<unk>", "<s>", "</s>", "<pad>", "a", "b"])
    assert source_ids(tokenizer, ["a b", "b"]) == [[4, 5], [5]]
