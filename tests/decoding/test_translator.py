"""The Python API, `from nmt import Translator`, on the learned toy model: the same translations
and perplexity as the run itself made, n-best with attention, and clear refusals."""

import json
import math
import subprocess
import sys

import pytest
import torch

from nmt.errors import NmtError


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
