"""The Python API, `from nmt import Translator`, on the learned toy model: the same translations
and perplexity as the run itself made, n-best with attention, each head's weights of multi-head
attention, and clear refusals."""

import json
import math
import subprocess
import sys

import pytest
import torch
from toys import model_for, sources

from nmt.data.batching import make_batch
from nmt.decoding.heads import head_weights
from nmt.decoding.search import greedy
from nmt.decoding.translate import Translation
from nmt.errors import NmtError
from nmt.evaluation.plots import save_attention


@pytest.fixture(scope="module")
def translator(learned_run):
    from nmt import Translator

    run_dir, _ = learned_run
    return Translator.from_checkpoint(run_dir / "checkpoints" / "best.pt", device="cpu")


def lines(path, n=None):
    return path.read_text(encoding="utf-8").splitlines()[:n]


def test_translates_as_the_run_did_with_its_own_decoding(translator, learned_run):
    run_dir, _ = learned_run
    found = translator.translate(lines(run_dir / "test.src", 8))
    assert [nbest[0].text for nbest in found] == lines(run_dir / "test.hyp", 8)
    assert all(len(nbest) == 1 and nbest[0].attention is None for nbest in found)


def test_n_best_with_attention(translator, learned_run):
    run_dir, _ = learned_run
    found = translator.translate(
        lines(run_dir / "test.src", 3), beam_size=4, n_best=3, attention=True
    )
    for nbest in found:
        assert len(nbest) == 3
        assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
        for hyp in nbest:
            assert hyp.attention.shape == (len(hyp.tokens) + 1, len(hyp.source_tokens))
            assert hyp.source_tokens[-1] == "</s>"
            torch.testing.assert_close(hyp.attention.sum(-1), torch.ones(len(hyp.tokens) + 1))


def test_an_empty_sentence_gives_an_empty_translation(translator, learned_run):
    run_dir, _ = learned_run
    first = lines(run_dir / "test.src", 1)[0]
    found = translator.translate(["", first, "   "])
    assert [nbest[0].text for nbest in found][::2] == ["", ""]
    assert found[1][0].text == lines(run_dir / "test.hyp", 1)[0]


def test_score_gives_the_runs_test_perplexity(translator, learned_run):
    run_dir, _ = learned_run
    scores = translator.score(lines(run_dir / "test.src"), lines(run_dir / "test.ref"))
    results = json.loads((run_dir / "results.json").read_text())
    assert scores.perplexity == pytest.approx(results["test_ppl"], rel=1e-4)
    assert len(scores.log_probs) == len(scores.n_tokens) == len(lines(run_dir / "test.src"))
    assert all(lp < 0 for lp in scores.log_probs) and min(scores.n_tokens) >= 2
    one = translator.score(lines(run_dir / "test.src", 1), lines(run_dir / "test.ref", 1))
    assert one.log_probs[0] == pytest.approx(scores.log_probs[0], abs=1e-4)
    assert one.perplexity == pytest.approx(math.exp(-one.log_probs[0] / one.n_tokens[0]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: t.translate("one sentence"), "a list of strings, not one string"),
        (lambda t: t.translate(["a", None]), "sentence 1 is NoneType None, not a string"),
        (lambda t: t.translate(["a"], beam_sizes=3), "unknown decoding option 'beam_sizes'"),
        (lambda t: t.translate(["a"], beam_size=2, n_best=3), "decode.n_best: must be between"),
        (lambda t: t.score(["a", "b"], ["a"]), "2 sources but 1 targets"),
    ],
)
def test_refuses_bad_calls_in_one_line(translator, call, message):
    with pytest.raises(NmtError, match=message):
        call(translator)


def test_from_checkpoint_refuses_a_missing_file(tmp_path):
    from nmt import Translator

    with pytest.raises(NmtError, match="no such file"):
        Translator.from_checkpoint(tmp_path / "none.pt")


def test_import_nmt_loads_no_torch():
    code = "import sys, nmt; assert 'torch' not in sys.modules; nmt.Translator"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_heads_weights_average_to_the_searchs_attention(tmp_path):
    """head_weights teacher-forces a found hypothesis: the heads' mean is the attention the
    search kept, each head sums to 1; save_attention writes them beside the mean."""
    model = model_for("model=rnnsearch", "model/attention=multihead", "model.attention.heads=2")
    src = sources(3)
    batch = make_batch(src, None, [0, 1, 2])
    found = greedy(model, batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=3)
    for i, hyp in enumerate(found):
        heads = head_weights(model, src[i], hyp.ids)  # (H, T, S)
        assert heads.shape == (2, len(hyp.ids) + 1, len(src[i]))
        torch.testing.assert_close(heads.mean(0), hyp.attention[:, : len(src[i])])
        torch.testing.assert_close(heads.sum(-1), torch.ones(2, len(hyp.ids) + 1))
    hyp, n = found[0], len(src[0])
    tokens = [f"t{j}" for j in hyp.ids]
    source = [f"s{j}" for j in range(n)]
    heads = head_weights(model, src[0], hyp.ids)
    save_attention(tmp_path, [Translation("x", 0.0, tokens, hyp.attention[:, :n], source, heads)])
    record = json.loads((tmp_path / "0000.json").read_text())
    torch.testing.assert_close(torch.tensor(record["heads"]), heads)
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert pngs == {"0000.png", "0000.head0.png", "0000.head1.png"}
