"""Copying (nmt/models/copy.py, `model.copy=true`): the pointer-generator's mixture follows See
et al. 2017 eqs. 8-9 written out from its own parameters, the loss is that mixture's exact NLL
on every path, the builder refuses what cannot copy, and on a toy task a copy model learns to
copy tokens it never saw where the plain model cannot."""

import random

import pytest
import torch
from toys import build, model_cfg, toy_batch

from nmt.data.batching import make_batch
from nmt.data.specials import BOS, EOS
from nmt.decoding.search import greedy
from nmt.errors import NmtError
from nmt.fast import accelerate
from nmt.models.build import build_model
from nmt.models.copy import PointerGenerator

B, S, V, H, DK, M = 2, 5, 11, 6, 4, 3


def pointer_inputs(k: int):
    """Rows for B sentences of k predictions each; sentence 1 has one padding position and a
    source id at two positions, whose weights add up."""
    g = torch.Generator().manual_seed(0)
    N = B * k
    weights = torch.rand(N, S, generator=g)
    weights[k:, -1] = 0.0  # sentence 1's padding
    src_ids = torch.tensor([[4, 5, 6, 7, 2], [8, 9, 8, 2, 3]])
    logits = torch.randn(N, V, generator=g)
    features, emb = torch.randn(N, H, generator=g), torch.randn(N, M, generator=g)
    return logits, features, emb, weights, torch.randn(B, S, DK, generator=g), src_ids


@pytest.mark.parametrize("k", [1, 3])
def test_the_mixture_follows_see_et_al(k):
    torch.manual_seed(0)
    pointer = PointerGenerator(feature_size=H, memory_size=DK, emb_size=M)
    logits, features, emb, weights, memory, src_ids = pointer_inputs(k)
    got = pointer(logits, features, emb, weights, memory, src_ids).exp()  # (N, V)
    for n in range(B * k):
        b = n // k
        a = weights[n] / weights[n].sum()  # local-p's weights need not sum to 1
        context = a @ memory[b]  # h*_t
        p_gen = torch.sigmoid(
            pointer.w_h.weight[0] @ context
            + pointer.w_s.weight[0] @ features[n]
            + pointer.w_x.weight[0] @ emb[n]
            + pointer.w_x.bias[0]
        )
        want = p_gen * torch.softmax(logits[n], -1)
        for s in range(S):
            want[src_ids[b, s]] += (1 - p_gen) * a[s]
        torch.testing.assert_close(got[n], want)
        z, _ = pointer.switch(features, emb, weights, memory)
        torch.testing.assert_close(torch.sigmoid(z[n, 0]), p_gen)
    torch.testing.assert_close(got.sum(-1), torch.ones(B * k))


def test_gradients_are_finite_and_reach_the_switch_where_a_target_is_not_in_the_source():
    torch.manual_seed(0)
    pointer = PointerGenerator(feature_size=H, memory_size=DK, emb_size=M)
    logits, features, emb, weights, memory, src_ids = pointer_inputs(1)
    tensors = [t.requires_grad_() for t in (logits, features, emb, weights, memory)]
    logp = pointer(*tensors, src_ids)
    loss = -logp[:, 10].sum() - logp[:, 8].sum()  # id 10 is in no source; 8 is in one
    loss.backward()
    for t in [*tensors, *pointer.parameters()]:
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "overrides", [["model=luong", "model.copy=true"], ["model=rnnsearch", "model.copy=true"]]
)
def test_the_loss_is_the_nll_of_the_step_by_step_mixture(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_mask)
        keys = model.decoder.attention.project_keys(enc.memory)
        state, nll = model.decoder.start(enc), torch.zeros(())
        for t in range(batch.tgt_in.size(1)):
            y = batch.tgt_in[:, t]
            features, state, alpha = model.decoder.step(y, state, enc, keys, t)
            logp = model.log_probs(model.generator(features), features, alpha, y, enc)
            picked = logp.gather(-1, batch.tgt_out[:, t : t + 1]).squeeze(-1)
            nll -= picked.masked_fill(~batch.tgt_mask[:, t], 0).sum()
        torch.testing.assert_close(model.loss(batch), nll)
        # label smoothing spreads over the mixture's log-probabilities as over logits
        smoothed = model.loss(batch, label_smoothing=0.1)
        logp = model.teacher_forced_log_probs(enc, *model.decoder(enc, batch.tgt_in), batch.tgt_in)
        logp = logp[batch.tgt_mask.flatten()]
        uniform = -logp.mean(-1).sum()
        torch.testing.assert_close(smoothed, 0.9 * nll + 0.1 * uniform)
        # the fast layer's model takes the reference loss for it
        torch.testing.assert_close(accelerate(model).loss(batch), nll)


def test_the_builder_refuses_what_cannot_copy():
    with pytest.raises(NmtError, match="model.copy: copying needs a joint vocabulary"):
        build_model(model_cfg("model.copy=true"), src_vocab_size=9, tgt_vocab_size=9)
    none = model_cfg("model=rnnencdec", "model.copy=true")
    with pytest.raises(NmtError, match="model/attention=none") as err:
        build_model(none, src_vocab_size=9, tgt_vocab_size=9, joint_vocab=True)
    assert "\n" not in str(err.value)


SEEN, UNSEEN = range(4, 30), range(30, 40)  # training uses SEEN ids only


def copy_task(n: int, rng: random.Random, unseen: bool) -> list[list[int]]:
    """n sentences of 4-7 SEEN ids; with `unseen`, one of them replaced by an UNSEEN id."""
    out = []
    for _ in range(n):
        ids = [rng.choice(SEEN) for _ in range(rng.randint(4, 7))]
        if unseen:
            ids[rng.randrange(len(ids))] = rng.choice(UNSEEN)
        out.append(ids)
    return out


def copied_unseen(copy: bool) -> float:
    """Train RNNsearch to copy its source on SEEN ids (200 updates of 32), then the share of
    sentences with one UNSEEN id that greedy search copies exactly."""
    torch.manual_seed(0)
    rng = random.Random(0)
    cfg = model_cfg("model=rnnsearch", "model.hidden_size=32", f"model.copy={str(copy).lower()}")
    model = build_model(cfg, src_vocab_size=40, tgt_vocab_size=40, joint_vocab=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        ids = copy_task(32, rng, unseen=False)
        batch = make_batch([x + [EOS] for x in ids], [[BOS, *x, EOS] for x in ids], range(32))
        optimizer.zero_grad()
        (model.loss(batch) / batch.n_tokens).backward()
        optimizer.step()
    test = copy_task(100, random.Random(1), unseen=True)
    batch = make_batch([x + [EOS] for x in test], None, range(100))
    hyps = greedy(model.eval(), batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=2)
    return sum(h.ids == x for h, x in zip(hyps, test, strict=True)) / len(test)


@pytest.mark.slow  # CI: the mixture's unit tests above and test_train's copy model end to end
def test_a_copy_model_copies_unseen_tokens_where_the_plain_model_cannot():
    """The plain output layer learned to give ids it never saw as targets no probability; the
    pointer copies them from the source."""
    assert copied_unseen(copy=False) < 0.05
    assert copied_unseen(copy=True) > 0.9


def test_a_copy_model_scores_with_the_mixture_in_a_padded_batch():
    """A sentence's copy log-probabilities are the same alone and padded beside others."""
    model = build("model=luong", "model/attention=local_p", "model.copy=true")
    src, tgt = toy_batch()
    together = make_batch(src, tgt, [0, 1, 2])
    with torch.no_grad():
        enc = model.encode(together.src, together.src_mask)
        features, weights = model.decoder(enc, together.tgt_in)
        logp_all = model.teacher_forced_log_probs(enc, features, weights, together.tgt_in)
        T = together.tgt_in.size(1)
        for row in range(3):
            alone = make_batch(src, tgt, [row])
            enc1 = model.encode(alone.src, alone.src_mask)
            f1, w1 = model.decoder(enc1, alone.tgt_in)
            logp_one = model.teacher_forced_log_probs(enc1, f1, w1, alone.tgt_in)
            n = alone.tgt_in.size(1)
            torch.testing.assert_close(logp_all[row * T : row * T + n], logp_one)
