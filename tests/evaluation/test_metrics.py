import json
import math
import subprocess

import pytest
import torch

from nmt.evaluation.metrics import attention_entropy, corpus_scores

HYPS = ["the cat sat on the mat", "a dog barked loudly at night", "it rains", "hello world again"]
REFS = ["the cat sat on a mat", "the dog barked loudly at night", "it is raining", "hello world"]
REFS2 = ["a cat was sitting on the mat", "a dog barked at night", "it rains", "hi world again"]
SRCS = ["w " * 5, "w " * 12, "w " * 55, "w " * 12]


def sacrebleu_cli(tmp_path, metric, refs):
    (tmp_path / "hyp").write_text("\n".join(HYPS) + "\n")
    paths = []
    for k, ref in enumerate(refs):
        paths.append(str(tmp_path / f"ref{k}"))
        (tmp_path / f"ref{k}").write_text("\n".join(ref) + "\n")
    out = subprocess.run(
        ["sacrebleu", *paths, "-i", str(tmp_path / "hyp"), "-m", metric, "-w", "6"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_scores_agree_with_the_sacrebleu_cli(tmp_path):
    ours = corpus_scores(SRCS, HYPS, [REFS, REFS2])
    bleu = sacrebleu_cli(tmp_path, "bleu", [REFS])
    assert ours["bleu"] == pytest.approx(bleu["score"], abs=1e-6)
    assert ours["bleu_signature"] == bleu["signature"]
    assert ours["bleu_multi_ref"] == pytest.approx(
        sacrebleu_cli(tmp_path, "bleu", [REFS, REFS2])["score"], abs=1e-6
    )
    assert ours["chrf"] == pytest.approx(sacrebleu_cli(tmp_path, "chrf", [REFS])["score"], abs=1e-6)
    assert ours["ter"] == pytest.approx(sacrebleu_cli(tmp_path, "ter", [REFS])["score"], abs=1e-6)


def test_length_buckets_count_every_sentence_once():
    rows = corpus_scores(SRCS, HYPS, [REFS])["bleu_by_length"]
    assert [r["bucket"] for r in rows] == ["0-10", "10-20", "20-30", "30-40", "40-50", "50+"]
    assert [r["n"] for r in rows] == [1, 2, 0, 0, 0, 1]
    assert rows[2]["bleu"] is None


def test_attention_entropy_measures_sharpness():
    uniform = torch.full((3, 4), 0.25)
    one_hot = torch.eye(4)[:3]
    assert attention_entropy([uniform]) == pytest.approx(math.log(4))
    assert attention_entropy([one_hot]) == pytest.approx(0.0, abs=1e-6)
    assert attention_entropy([uniform, one_hot]) == pytest.approx(math.log(4) / 2)


def test_the_floor_scores_hypotheses_against_other_sentences_of_the_same_length():
    from nmt.evaluation.metrics import floor_bleu, shuffled_references

    sources = [" ".join(["w"] * (1 + i // 3)) for i in range(45)]  # lengths 1..15, 3 of each
    refs = [f"reference {i} of sentence {i}" for i in range(45)]
    shuffled = shuffled_references(sources, refs, seed=1)
    assert sorted(shuffled) == sorted(refs)  # a permutation
    assert all(s != r for s, r in zip(shuffled, refs, strict=True))  # none keeps its own
    lengths = {r: len(s.split()) for s, r in zip(sources, refs, strict=True)}
    for source, ref in zip(sources, shuffled, strict=True):  # a neighbour's in length
        assert abs(lengths[ref] - len(source.split())) <= 7
    assert shuffled == shuffled_references(sources, refs, seed=1)  # the seed fixes it
    # a model that copies the reference scores 100, its floor what other verses share with it
    assert floor_bleu(sources, refs, refs) < 40
    same = ["the same sentence every time"] * 45
    assert floor_bleu(sources, same, same) == pytest.approx(100.0)
