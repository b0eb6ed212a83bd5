"""Every encoder-attention-decoder pairing (nmt/models/seq2seq.py): teacher forcing equals
step by step, padding changes no score, the loss counts real tokens, and each trains; the
loss-term hook (hard attention's REINFORCE)."""

import pytest
import torch
from toys import IDS, MODELS, build, toy_batch

from nmt.data.batching import make_batch
from nmt.decoding.search import greedy
from nmt.fast import accelerate
from nmt.models.attention import PassRecord


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_equals_step_by_step(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    enc = model.encode(batch.src, batch.src_mask)
    features, weights = model.decoder(enc, batch.tgt_in)
    keys = model.decoder.attention.project_keys(enc.memory)
    state = model.decoder.start(enc)
    for t in range(batch.tgt_in.size(1)):
        f_t, state, w_t = model.decoder.step(batch.tgt_in[:, t], state, enc, keys, t)
        torch.testing.assert_close(f_t, features[:, t])
        torch.testing.assert_close(w_t, weights[:, t])


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_a_sentence_scores_the_same_alone_and_in_a_padded_batch(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    together = make_batch(src, tgt, [0, 1, 2])
    with torch.no_grad():
        f_all, _ = model.decoder(model.encode(together.src, together.src_mask), together.tgt_in)
        for row in range(3):
            alone = make_batch(src, tgt, [row])
            f_one, _ = model.decoder(model.encode(alone.src, alone.src_mask), alone.tgt_in)
            n = alone.tgt_in.size(1)
            torch.testing.assert_close(f_all[row, :n], f_one[0])
        hyps_all = greedy(model, together.src, together.src_mask, max_len_ratio=2, max_len_extra=3)
        for row in range(3):
            alone = make_batch(src, tgt, [row])
            (hyp,) = greedy(model, alone.src, alone.src_mask, max_len_ratio=2, max_len_extra=3)
            assert hyp.ids == hyps_all[row].ids


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_loss_uses_real_tokens_only(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    total = model.loss(batch)
    parts = sum(model.loss(make_batch(src, tgt, [i])) for i in range(3))
    torch.testing.assert_close(total, parts)


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_every_pairing_trains_a_few_steps(overrides):
    model = build(*overrides).train()
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = model.loss(batch) / batch.n_tokens
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_reinforce_adds_a_zero_valued_term_whose_gradient_reaches_the_score():
    """With hard attention the loss's value is the NLL of the drawn contexts; the score, which
    no draw differentiates, gets the estimator's gradient through the loss-term hook; the fast
    layer takes the same reference loss."""
    model = build("model=luong", "model/attention=hard", "model.attention.expected_p=0").train()
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    torch.manual_seed(1)
    loss = model.loss(batch)
    torch.manual_seed(1)  # the same draws
    features, _ = model.decoder(model.encode(batch.src, batch.src_mask), batch.tgt_in)
    logits = model.generator(features[batch.tgt_mask])
    nll = torch.nn.functional.cross_entropy(logits, batch.tgt_out[batch.tgt_mask], reduction="sum")
    torch.testing.assert_close(loss, nll)
    loss.backward()
    score = model.decoder.attention.score
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in score.parameters())
    fast = accelerate(model)
    torch.manual_seed(1)
    torch.testing.assert_close(fast.loss(batch), loss.detach())


def test_an_expected_pass_attends_with_the_soft_weights_and_adds_no_reinforce_term():
    """Xu et al.'s reducer: with probability expected_p a training pass attends with alpha_t
    itself (the soft weights, trained by backpropagation) and the estimator adds nothing."""
    model = build("model=luong", "model/attention=hard", "model.attention.expected_p=1").train()
    attention = model.decoder.attention
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    attention.begin()
    assert attention.expected
    enc = model.encode(batch.src, batch.src_mask)
    record = PassRecord()
    _, weights = model.decoder(enc, batch.tgt_in, record=record)  # (B, T, S)
    assert not torch.all((weights == 0) | (weights == 1))  # soft, not one-hot
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    nll = torch.zeros(batch.tgt_mask.shape)
    assert float(attention.loss_term(nll, batch.tgt_mask, record)) == 0.0
    model.loss(batch).backward()
    assert all(p.grad.abs().sum() > 0 for p in attention.score.parameters())
    half = build("model=luong", "model/attention=hard").train().decoder.attention
    torch.manual_seed(0)
    expected = 0
    for _ in range(400):
        half.begin()
        expected += half.expected
    assert 150 < expected < 250  # the YAML's 0.5, one draw a pass
    half.eval().begin()
    assert not half.expected  # evaluation takes the arg-max
