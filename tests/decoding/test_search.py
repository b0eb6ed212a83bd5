"""Greedy and beam search (nmt/decoding/search.py): batching changes nothing, a beam of one is
greedy, a wide beam finds the best sequence, and the length penalties rerank as written."""

import itertools

import pytest
import torch
from toys import SCORE_TOLERANCE, SEARCH_MODELS, model_for, sources

from nmt.config import DecodeConfig, defaults
from nmt.data.batching import make_batch
from nmt.data.specials import BOS, EOS
from nmt.decoding.search import beam_search, decode, greedy, max_lengths, normalize_score
from nmt.errors import NmtError


@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_beam_of_one_equals_greedy(overrides):
    model = model_for(*overrides)
    src = sources(8)
    batch = make_batch(src, None, list(range(8)))
    g = greedy(model, batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=3)
    b = beam_search(
        model, batch.src, batch.src_mask, beam_size=1, max_len_ratio=1.5, max_len_extra=3
    )
    for gh, (bh,) in zip(g, b, strict=True):
        assert gh.ids == bh.ids
        assert gh.score == pytest.approx(bh.score, **SCORE_TOLERANCE)
        torch.testing.assert_close(gh.attention, bh.attention)


@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_batched_search_equals_sentence_by_sentence(overrides):
    model = model_for(*overrides)
    src = sources(6)
    batch = make_batch(src, None, list(range(6)))
    together = beam_search(
        model,
        batch.src,
        batch.src_mask,
        beam_size=3,
        max_len_ratio=1.5,
        max_len_extra=3,
        length_penalty="gnmt",
        n_best=3,
    )
    for i in range(6):
        alone = make_batch(src, None, [i])
        (nbest,) = beam_search(
            model,
            alone.src,
            alone.src_mask,
            beam_size=3,
            max_len_ratio=1.5,
            max_len_extra=3,
            length_penalty="gnmt",
            n_best=3,
        )
        assert [h.ids for h in nbest] == [h.ids for h in together[i]]
        want = [h.score for h in together[i]]
        assert [h.score for h in nbest] == pytest.approx(want, **SCORE_TOLERANCE)


@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_greedy_in_a_batch_equals_greedy_alone(overrides):
    """Sentences leave the greedy batch as they end; the rest decode as if alone."""
    model = model_for(*overrides)
    src = sources(8)
    batch = make_batch(src, None, list(range(8)))
    together = greedy(model, batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=3)
    assert len({len(h.ids) for h in together}) > 1  # they do end at different steps
    for i, hyp in enumerate(together):
        alone = make_batch(src, None, [i])
        (single,) = greedy(model, alone.src, alone.src_mask, max_len_ratio=1.5, max_len_extra=3)
        assert single.ids == hyp.ids
        assert single.score == pytest.approx(hyp.score, **SCORE_TOLERANCE)
        torch.testing.assert_close(single.attention, hyp.attention[:, : alone.src.size(1)])


def sequence_logprob(model, src, ids, limit):
    """log p(ids </s> | src) by teacher forcing; at the length limit </s> is forced (free)."""
    batch = make_batch([src], None, [0])
    enc = model.encode(batch.src, batch.src_mask)
    keys = model.decoder.attention.project_keys(enc.memory)
    state, y, total = model.decoder.start(enc), torch.tensor([BOS]), 0.0
    for t, token in enumerate([*ids, EOS]):
        if t >= limit:
            break
        features, state, alpha = model.decoder.step(y, state, enc, keys, t)
        logp = model.log_probs(model.generator(features), features, alpha, y, enc)
        total += float(logp[0, token])
        y = torch.tensor([token])
    return total


def reference_beam_search(model, src, K, limit, penalty, n_best):
    """Beam search written plainly for one sentence: each hypothesis steps alone (batch 1)
    with its own decoder state, every candidate of the K beams is listed, the 2K best kept;
    those ending in </s> among the K best finish, the K best others go on, until K have
    finished or the length limit (where </s> is forced, free) is reached."""
    batch = make_batch([src], None, [0])
    enc = model.encode(batch.src, batch.src_mask)
    keys = model.decoder.attention.project_keys(enc.memory)
    beams, finished = [([], 0.0, model.decoder.start(enc))], []
    for t in range(limit + 1):
        candidates = []
        for ids, score, state in beams:
            y = torch.tensor([ids[-1] if ids else BOS])
            features, new_state, alpha = model.decoder.step(y, state, enc, keys, t)
            logp = model.log_probs(model.generator(features), features, alpha, y, enc)[0]
            if t >= limit:
                logp = torch.full_like(logp, float("-inf")).index_fill(0, torch.tensor(EOS), 0)
            candidates += [(score + float(logp[v]), [*ids, v], new_state) for v in range(len(logp))]
        candidates = sorted(candidates, key=lambda c: -c[0])[: 2 * K]
        for score, ids, _ in candidates[:K]:
            if ids[-1] == EOS and score > float("-inf"):
                finished.append((ids[:-1], normalize_score(score, len(ids), penalty, 1.0)))
        beams = [(ids, score, st) for score, ids, st in candidates if ids[-1] != EOS][:K]
        if len(finished) >= K or t >= limit:
            break
    return sorted(finished, key=lambda h: -h[1])[:n_best]


@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_beam_search_equals_an_unbatched_reference_search(overrides):
    """The batched search, whose rows are reordered and pruned every step (the decoder's state,
    a stateful attention's included), finds the n-best list of the plain search above: the same
    scores, and the same hypotheses but where two tie within the kernels' rounding (then each
    search may prune either, so the batched one's must score what it says by teacher forcing)."""
    model = model_for(*overrides)
    src = sources(6)
    batch = make_batch(src, None, list(range(6)))
    kw = dict(beam_size=3, max_len_ratio=1.5, max_len_extra=3, length_penalty="gnmt", n_best=3)
    nbests = beam_search(model, batch.src, batch.src_mask, **kw)
    limits = max_lengths(batch.src_mask, 1.5, 3).tolist()
    with torch.no_grad():
        for i, nbest in enumerate(nbests):
            want = reference_beam_search(model, src[i], 3, limits[i], "gnmt", 3)
            assert [h.score for h in nbest] == pytest.approx(
                [score for _, score in want], **SCORE_TOLERANCE
            )
            for hyp, (ids, _) in zip(nbest, want, strict=True):
                if hyp.ids != ids:
                    logprob = sequence_logprob(model, src[i], hyp.ids, limits[i])
                    own = normalize_score(logprob, len(hyp.ids) + 1, "gnmt", 1.0)
                    assert own == pytest.approx(hyp.score, **SCORE_TOLERANCE)


@pytest.mark.parametrize("penalty", ["none", "average", "gnmt"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wide_beam_finds_the_best_sequence_by_enumeration(penalty, seed):
    vocab = 5  # <unk> <s> </s> <pad> and one word: every id but </s> can be emitted
    model = model_for("model=rnnsearch", vocab=vocab, seed=seed)
    src = [4, 4, EOS]
    limit = 3  # ratio 0 + extra 3: at most 3 tokens, then </s> is forced
    words = [i for i in range(vocab) if i != EOS]
    best_score, best_ids = float("-inf"), None
    with torch.no_grad():
        for n in range(limit + 1):
            for ids in itertools.product(words, repeat=n):
                raw = sequence_logprob(model, src, list(ids), limit)
                score = normalize_score(raw, n + 1, penalty, 0.8)
                if score > best_score:
                    best_score, best_ids = score, list(ids)
    batch = make_batch([src], None, [0])
    (nbest,) = beam_search(
        model,
        batch.src,
        batch.src_mask,
        beam_size=len(words) ** limit,
        max_len_ratio=0.0,
        max_len_extra=limit,
        length_penalty=penalty,
        alpha=0.8,
    )
    assert nbest[0].ids == best_ids
    assert nbest[0].score == pytest.approx(best_score, abs=1e-4)


def test_length_normalisation_formulas():
    assert normalize_score(-6.0, 3, "none", 1.0) == -6.0
    assert normalize_score(-6.0, 3, "average", 1.0) == -2.0
    assert normalize_score(-6.0, 3, "gnmt", 1.0) == pytest.approx(-6.0 / (8 / 6))
    assert normalize_score(-6.0, 3, "gnmt", 0.0) == -6.0


def test_normalisation_reranks_the_n_best_list():
    model = model_for("model=rnnsearch", seed=3)
    batch = make_batch(sources(4, seed=5), None, list(range(4)))
    kw = dict(beam_size=6, max_len_ratio=2.0, max_len_extra=4, n_best=6)
    plain = beam_search(model, batch.src, batch.src_mask, length_penalty="none", **kw)
    average = beam_search(model, batch.src, batch.src_mask, length_penalty="average", **kw)
    changed = False
    for p, a in zip(plain, average, strict=True):
        assert [h.score for h in p] == sorted([h.score for h in p], reverse=True)
        assert [h.score for h in a] == sorted([h.score for h in a], reverse=True)
        for h in a:  # the same hypothesis scored both ways: average = raw / (length + 1)
            raw = next((q.score for q in p if q.ids == h.ids), None)
            if raw is not None:
                assert h.score == pytest.approx(raw / (len(h.ids) + 1), abs=1e-5)
        changed |= [h.ids for h in p] != [h.ids for h in a]
    assert changed


def test_decode_dispatches_and_validates():
    model = model_for("model=rnnsearch")
    batch = make_batch(sources(3), None, [0, 1, 2])
    out = decode(model, batch.src, batch.src_mask, defaults(DecodeConfig, beam_size=3, n_best=2))
    assert [len(n) for n in out] == [2, 2, 2]
    with pytest.raises(NmtError, match="decode.n_best"):
        defaults(DecodeConfig, beam_size=2, n_best=3)
    with pytest.raises(NmtError, match="decode.length_penalty"):
        defaults(DecodeConfig, length_penalty="wu")
    with pytest.raises(NmtError, match="decode.stop"):
        defaults(DecodeConfig, stop="first")


@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_best_finished_stops_sooner_and_only_where_k_finished_went(overrides):
    """best_finished is k_finished cut short: its hypotheses are ones k_finished also finished,
    so k_finished's best scores at least as well; batching does not change it."""
    model = model_for(*overrides)
    src = sources(8)
    batch = make_batch(src, None, list(range(8)))
    kw = dict(beam_size=3, max_len_ratio=1.5, max_len_extra=3, length_penalty="gnmt")
    full = beam_search(model, batch.src, batch.src_mask, n_best=3, **kw)
    early = beam_search(model, batch.src, batch.src_mask, stop="best_finished", **kw)
    for i, ((best,), every) in enumerate(zip(early, full, strict=True)):
        assert every[0].score >= best.score - 1e-5
        found = [h for h in every if h.ids == best.ids]
        if found:  # (k_finished may have finished more than the 3 it returns)
            assert found[0].score == pytest.approx(best.score, abs=1e-5)
        alone = make_batch(src, None, [i])
        ((single,),) = beam_search(model, alone.src, alone.src_mask, stop="best_finished", **kw)
        assert single.ids == best.ids


@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_beam_attention_is_that_of_the_hypothesis_by_teacher_forcing(overrides):
    """Each n-best hypothesis's weights, followed back through the beams it came from, are the
    weights teacher forcing gives its tokens."""
    model = model_for(*overrides)
    src = sources(6)
    batch = make_batch(src, None, list(range(6)))
    nbests = beam_search(
        model, batch.src, batch.src_mask, beam_size=3, max_len_ratio=1.5, max_len_extra=3, n_best=3
    )
    for i, nbest in enumerate(nbests):
        for hyp in nbest:
            forced = make_batch([src[i]], [[BOS, *hyp.ids, EOS]], [0])
            with torch.no_grad():
                weights = model.attention_weights(forced)[0]  # (len(ids) + 1, S_i)
            torch.testing.assert_close(hyp.attention[:, : len(src[i])], weights)
