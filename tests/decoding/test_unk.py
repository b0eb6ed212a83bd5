import pytest
import torch

from nmt.decoding.unk import load_dictionary, replace_unks
from nmt.errors import NmtError


def test_each_unk_takes_the_most_attended_source_word():
    src = ["the", "Zorglub", "sleeps", "</s>"]
    tokens = ["le", "<unk>", "dort", "<unk>"]
    attention = torch.tensor(
        [
            [0.9, 0.05, 0.03, 0.02],
            [0.1, 0.80, 0.05, 0.05],  # <unk> aligned to "Zorglub"
            [0.0, 0.10, 0.85, 0.05],
            [0.1, 0.10, 0.20, 0.60],  # most on </s>: the best word is "sleeps"
            [0.0, 0.00, 0.00, 1.00],
        ]
    )
    assert replace_unks(tokens, attention, src, {}) == ["le", "Zorglub", "dort", "sleeps"]
    assert replace_unks(tokens, attention, src, {"Zorglub": "Zorglüb"})[1] == "Zorglüb"


def test_dictionary_errors_name_the_line(tmp_path):
    good = tmp_path / "dict.tsv"
    good.write_text("house\tmaison\nhouse\tdemeure\n\ncat\tchat\n")
    assert load_dictionary(good) == {"house": "maison", "cat": "chat"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("house\tmaison\ncat chat\n")
    with pytest.raises(NmtError, match=r"bad.tsv:2: expected"):
        load_dictionary(bad)
    with pytest.raises(NmtError, match="no such file"):
        load_dictionary(tmp_path / "missing.tsv")
