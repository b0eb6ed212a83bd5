"""Contract and formula tests of every attention variant (docs/design.md's interface)."""

import functools
import math

import pytest
import torch

from nmt.errors import NmtError
from nmt.models.attention import (
    BahdanauAttention,
    ConcatScore,
    CosineScore,
    DotScore,
    GeneralScore,
    GlobalAttention,
    HardAttention,
    KernelScore,
    LocalMAttention,
    LocalPAttention,
    LocationAttention,
    MultiHeadAttention,
    NoAttention,
    PassRecord,
    ProjectedScaledDotScore,
    ScaledDotScore,
    attend,
)
from nmt.models.build import attention_config, build_attention

B, S, T, D = 3, 9, 5, 6  # D: query and key size (dot needs them equal)
LENGTHS = [S, 4, 1]

# Every variant under test: name -> (class, options); a score is its class, or a partial of it
# with options. A new variant or score is one entry here (and a score one in SCORE_FORMULAS).
VARIANTS = {
    "none": (NoAttention, {}),
    "bahdanau": (BahdanauAttention, {}),
    "luong_dot": (GlobalAttention, {"score": DotScore}),
    "luong_general": (GlobalAttention, {"score": GeneralScore}),
    "luong_concat": (GlobalAttention, {"score": ConcatScore}),
    "luong_location": (LocationAttention, {"max_len": 7}),
    "local_m_dot": (LocalMAttention, {"score": DotScore, "window": 2}),
    "local_m_general": (LocalMAttention, {"score": GeneralScore, "window": 2}),
    "local_m_concat": (LocalMAttention, {"score": ConcatScore, "window": 2}),
    "local_p_dot": (LocalPAttention, {"score": DotScore, "window": 2}),
    "local_p_general": (LocalPAttention, {"score": GeneralScore, "window": 2}),
    "local_p_concat": (LocalPAttention, {"score": ConcatScore, "window": 2}),
    "scaled_dot": (GlobalAttention, {"score": ScaledDotScore}),
    "scaled_dot_projected": (GlobalAttention, {"score": ProjectedScaledDotScore}),
    "cosine": (GlobalAttention, {"score": CosineScore}),
    "kernel": (GlobalAttention, {"score": functools.partial(KernelScore, hidden_size=4)}),
    "local_m_cosine": (LocalMAttention, {"score": CosineScore, "window": 2}),
    "local_p_kernel": (LocalPAttention, {"score": KernelScore, "window": 2}),
    "local_p_scaled_dot": (LocalPAttention, {"score": ScaledDotScore, "window": 2}),
    "multihead_scaled_dot": (MultiHeadAttention, {"heads": 2, "score": ScaledDotScore}),
    "multihead_cosine": (MultiHeadAttention, {"heads": 3, "score": CosineScore}),
    "multihead_kernel": (
        MultiHeadAttention,
        {"heads": 2, "score": KernelScore, "head_size": 4},
    ),
    "multihead_concat": (MultiHeadAttention, {"heads": 2, "score": ConcatScore}),
    # evaluation mode (the arg-max position) unless a test says otherwise
    "hard_concat": (HardAttention, {"score": ConcatScore}),
    "hard_gumbel_general": (HardAttention, {"score": GeneralScore, "estimator": "gumbel"}),
}
NAMES = list(VARIANTS)


def make(name):
    variant, options = VARIANTS[name]
    return variant(query_size=D, key_size=D, **options).eval()


def build(name):
    torch.manual_seed(0)
    attn = make(name)
    for p in attn.parameters():  # away from any zero init, so every formula term matters
        torch.nn.init.normal_(p, std=0.5)
    return attn


def inputs(lengths=LENGTHS, src_len=S, seed=0):
    g = torch.Generator().manual_seed(seed)
    memory = torch.randn(len(lengths), src_len, D, generator=g)
    mask = torch.arange(src_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return memory, mask


@pytest.mark.parametrize("name", NAMES)
def test_contract_shapes_and_weights(name):
    attn = build(name)
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    context, weights = attn(torch.randn(B, D), keys, memory, mask, step=3)
    assert context.shape == (B, D) and weights.shape == (B, S)
    assert (weights >= 0).all()
    assert (weights[~mask] == 0).all()
    if name.startswith("local_p"):  # windowed softmax times a Gaussian <= 1, not renormalised
        assert (weights.sum(-1) <= 1 + 1e-6).all() and (weights.sum(-1) > 0).all()
    else:
        torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    if not name.startswith("multihead"):  # its context projects the heads' own sums
        torch.testing.assert_close(context, torch.einsum("bs,bsd->bd", weights, memory))


@pytest.mark.parametrize("name", NAMES)
def test_whole_sequence_equals_single_steps(name):
    attn = build(name)
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    query = torch.randn(B, T, D)
    context, weights = attn(query, keys, memory, mask, step=torch.arange(T))
    assert context.shape == (B, T, D) and weights.shape == (B, T, S)
    for t in range(T):
        c_t, w_t = attn(query[:, t], keys, memory, mask, step=t)
        torch.testing.assert_close(context[:, t], c_t)
        torch.testing.assert_close(weights[:, t], w_t)


@pytest.mark.parametrize("name", NAMES)
def test_beams_sharing_a_memory_row_equal_beams_with_copies(name):
    """attend: k query rows per memory row (beam search) give what k copies of the memory give."""
    attn, k = build(name), 4
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    query = torch.randn(B * k, D)  # (B k, D): the k beams of each sentence, consecutive
    context, weights, state = attend(attn, query, keys, memory, mask, 3)
    assert state == ()  # a stateless variant
    copies = torch.arange(B).repeat_interleave(k)
    want_c, want_w = attn(query, keys[copies], memory[copies], mask[copies], step=3)
    torch.testing.assert_close(context, want_c)
    torch.testing.assert_close(weights, want_w)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_and_tiny_inputs_work(name):
    attn = build(name)
    memory, mask = inputs(lengths=[1], src_len=1)
    context, weights = attn(torch.randn(1, D), attn.project_keys(memory), memory, mask)
    assert context.shape == (1, D) and weights.shape == (1, 1)
    assert 0 < float(weights.detach()) <= 1

    memory, mask = inputs()
    memory.requires_grad_(True)
    record = PassRecord()
    if name.startswith("hard"):  # the gradient of a draw: the estimator's (training mode)
        attn.train().begin()
    query = torch.randn(B, T, D)
    context, _, _ = attend(attn, query, attn.project_keys(memory), memory, mask, 0, (), record)
    loss = context.pow(2).sum()
    if name.startswith("hard"):
        tgt_mask = torch.ones(B, T, dtype=torch.bool)
        loss = loss + attn.loss_term(torch.rand(B, T), tgt_mask, record)
    loss.backward()
    assert memory.grad.abs().sum() > 0
    for pname, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


# --- formula tests: the papers' equations written out from the module's own parameters ------


def _cosine(sc):
    def cosine(q, h):
        beta = torch.nn.functional.softplus(sc.w_beta.weight[0] @ q + sc.w_beta.bias[0])
        return beta * torch.cosine_similarity(q, sc.W_k.weight @ h, dim=0)

    return cosine


def _kernel(sc):
    sigma = torch.exp(sc.log_sigma)
    return lambda q, h: -((sc.W_q.weight @ q - sc.W_k.weight @ h) ** 2).sum() / (2 * sigma**2)


# The score e(q, h) of each score's equation, from the module's own parameters.
SCORE_FORMULAS = {
    DotScore: lambda sc: lambda q, h: q @ h,
    GeneralScore: lambda sc: lambda q, h: q @ (sc.W_a.weight @ h),
    ConcatScore: lambda sc: (
        lambda q, h: sc.v_a.weight[0] @ torch.tanh(sc.W_a.weight @ torch.cat([q, h]))
    ),
    ScaledDotScore: lambda sc: lambda q, h: q @ h / math.sqrt(len(q)),
    ProjectedScaledDotScore: lambda sc: (
        lambda q, h: (sc.W_q.weight @ q) @ (sc.W_k.weight @ h) / math.sqrt(sc.size)
    ),
    CosineScore: _cosine,
    KernelScore: _kernel,
}


def score_fn(attn):
    """The score e(q, h) of the variant's equation, from the module's parameters."""
    if isinstance(attn, BahdanauAttention):
        return lambda q, h: (
            attn.v_a.weight[0]
            @ torch.tanh(attn.W_a.weight @ q + attn.U_a.weight @ h + attn.U_a.bias)
        )
    return SCORE_FORMULAS[type(attn.score)](attn.score)


def reference(attn, name, q, memory, n, t):
    """Weights (n,) over the n real positions of one sentence, at target step t."""
    if name == "none":
        return torch.eye(n)[n - 1]
    if name.startswith("multihead"):
        return multihead_reference(attn, name, q, memory, n)[0]
    if name.startswith("hard"):  # the arg-max of the soft weights
        score = score_fn(attn)
        soft = torch.softmax(torch.stack([score(q, memory[j]) for j in range(n)]), 0)
        return torch.nn.functional.one_hot(soft.argmax(), n).float()
    if name == "luong_location":
        logits = attn.W_a.weight @ q + attn.W_a.bias
        reach = min(n, attn.max_len)
        a = torch.zeros(n)
        a[:reach] = torch.softmax(logits[:reach], 0)
        return a
    e = torch.stack([score_fn(attn)(q, memory[j]) for j in range(n)])
    if name.startswith("local_m"):
        p, Dw = min(t, n - 1), attn.window
        window = [j for j in range(n) if p - Dw <= j <= p + Dw]
        a = torch.zeros(n)
        a[window] = torch.softmax(e[window], 0)
        return a
    if name.startswith("local_p"):
        p = (n - 1) * torch.sigmoid(attn.v_p.weight[0] @ torch.tanh(attn.W_p.weight @ q))
        Dw, sigma = attn.window, attn.window / 2
        centre = math.floor(float(p.detach()))
        window = [j for j in range(n) if centre - Dw <= j <= centre + Dw]
        a = torch.zeros(n)
        gauss = torch.exp(-((torch.tensor(window, dtype=torch.float) - p) ** 2) / (2 * sigma**2))
        a[window] = torch.softmax(e[window], 0) * gauss
        return a
    return torch.softmax(e, 0)


def multihead_reference(attn, name, q, memory, n):
    """Mean weights (n,) and context (Dk,) of Vaswani et al.'s multi-head attention, head by
    head from the module's projections."""
    d, weights, heads = attn.head_size, [], []
    for i in range(attn.heads):
        rows = slice(i * d, (i + 1) * d)
        q_i = attn.W_Q.weight[rows] @ q
        k_i = memory[:n] @ attn.W_K.weight[rows].T  # (n, d)
        v_i = memory[:n] @ attn.W_V.weight[rows].T
        score = score_fn(attn)
        a_i = torch.softmax(torch.stack([score(q_i, k) for k in k_i]), 0)
        weights.append(a_i)
        heads.append(a_i @ v_i)
    return torch.stack(weights).mean(0), attn.W_O.weight @ torch.cat(heads)


@pytest.mark.parametrize("name", NAMES)
def test_formula(name):
    attn = build(name)
    memory, mask = inputs()
    query = torch.randn(B, D)
    for t in (0, 3, 8):
        context, weights = attn(query, attn.project_keys(memory), memory, mask, step=t)
        for i, n in enumerate(LENGTHS):
            expected = reference(attn, name, query[i], memory[i], n, t).detach()
            torch.testing.assert_close(weights[i, :n].detach(), expected)
            if name.startswith("multihead"):
                expected_context = multihead_reference(attn, name, query[i], memory[i], n)[1]
            else:
                expected_context = expected @ memory[i, :n]
            torch.testing.assert_close(context[i].detach(), expected_context.detach())


def test_each_head_weighs_like_a_single_head_attention():
    """head_weights gives every head's own distribution, and their mean is the returned one."""
    attn = build("multihead_cosine")
    memory, mask = inputs()
    query = torch.randn(B, T, D)
    keys = attn.project_keys(memory)
    per_head, _ = attn.head_weights(query, keys, mask)
    _, weights = attn(query, keys, memory, mask, step=torch.arange(T))
    assert per_head.shape == (B, 3, T, S)
    torch.testing.assert_close(per_head.mean(1), weights)
    torch.testing.assert_close(per_head.sum(-1), torch.ones(B, 3, T))


def test_a_score_option_it_does_not_take_is_one_clear_error():
    node = attention_config("kernel")
    node.score.width = 2
    with pytest.raises(NmtError, match="model.attention.score: .*width"):
        build_attention(node, query_size=D, key_size=D)
    with pytest.raises(NmtError, match="'cubic' is not a score"):
        GlobalAttention(query_size=D, key_size=D, score="cubic")
    with pytest.raises(NmtError, match="3 heads do not divide the memory size 8"):
        MultiHeadAttention(query_size=D, key_size=8, heads=3, score=ScaledDotScore)


def test_location_ignores_positions_past_max_len():
    attn = build("luong_location")  # max_len 7 < S 9
    memory, mask = inputs()
    _, weights = attn(torch.randn(B, D), memory, memory, mask)
    assert (weights[:, 7:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))


def test_local_p_renormalize_flag_sums_to_one():
    torch.manual_seed(0)
    attn = LocalPAttention(query_size=D, key_size=D, score=GeneralScore, window=2, renormalize=True)
    memory, mask = inputs()
    _, weights = attn(torch.randn(B, D), attn.project_keys(memory), memory, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))


def test_local_m_window_follows_the_target_position():
    attn = build("local_m_general")  # D = 2
    memory, mask = inputs()
    _, weights = attn(torch.randn(B, D), attn.project_keys(memory), memory, mask, step=5)
    assert (weights[0, :3] == 0).all() and (weights[0, 3:8] > 0).all() and weights[0, 8] == 0
    assert (weights[1, :1] == 0).all() and (weights[1, 1:4] > 0).all()  # centre clamped to 3


# --- hard attention in training: the draws and the estimators ---------------------------------


def test_hard_attention_draws_positions_as_often_as_their_soft_weights():
    attn = build("hard_concat").train()
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    query = torch.randn(B, D).unsqueeze(1).expand(B, 4000, D)  # one query, drawn 4000 times
    with torch.no_grad():
        context, weights = attn(query, keys, memory, mask)
        soft = torch.softmax(attn.score(query[:, :1], keys).masked_fill(~mask[:, None], -1e9), -1)
    assert ((weights == 0) | (weights == 1)).all() and (weights.sum(-1) == 1).all()
    assert (weights[~mask[:, None].expand_as(weights)] == 0).all()
    torch.testing.assert_close(context, torch.einsum("bts,bsd->btd", weights, memory))
    torch.testing.assert_close(weights.mean(1), soft[:, 0], atol=0.03, rtol=0)


def test_reinforce_term_is_zero_valued_with_the_estimators_gradient():
    """loss_term's value is 0 and its gradient is Xu et al.'s eq. (12): -lambda_r (R_b - b)
    d log a(s~) - lambda_e dH[a], written out from the draws (b: the first batch's mean)."""
    torch.manual_seed(0)
    attn = HardAttention(query_size=D, key_size=D, score=GeneralScore, entropy_weight=0.1)
    memory, mask = inputs()
    query = torch.randn(B, T, D)
    tgt_mask = torch.arange(T) < torch.tensor([T, 3, 1]).unsqueeze(1)  # (B, T)
    nll = torch.rand(B, T) * tgt_mask
    attn.begin()
    record = PassRecord()
    keys = attn.project_keys(memory)
    _, weights = attn(query, keys, memory, mask, step=torch.arange(T), record=record)
    term = attn.loss_term(nll, tgt_mask, record)
    assert term.item() == 0
    got = torch.autograd.grad(term, attn.score.W_a.weight)[0]

    alpha = torch.softmax(
        (query @ (memory @ attn.score.W_a.weight.T).transpose(1, 2)).masked_fill(
            ~mask[:, None], float("-inf")
        ),
        -1,
    )  # (B, T, S)
    drawn = weights.argmax(-1, keepdim=True)
    log_p = alpha.gather(-1, drawn).squeeze(-1).log()
    entropy = -(alpha * alpha.clamp_min(1e-30).log()).sum(-1)  # 0 log 0 = 0 at padding
    reward = -(nll.sum(1) / tgt_mask.sum(1))
    advantage = reward - reward.mean()
    surrogate = -((advantage[:, None] * log_p * tgt_mask).sum() + 0.1 * (entropy * tgt_mask).sum())
    want = torch.autograd.grad(surrogate, attn.score.W_a.weight)[0]
    torch.testing.assert_close(got, want)
    assert attn.baseline_set and attn.baseline.item() == pytest.approx(reward.mean().item())


def test_a_draw_without_gradients_or_outside_a_pass_leaves_nothing_for_the_loss_term():
    attn = build("hard_concat").train()
    memory, mask = inputs()
    record = PassRecord()
    with torch.no_grad():
        attn(torch.randn(B, D), attn.project_keys(memory), memory, mask, record=record)
    attn(torch.randn(B, D), attn.project_keys(memory), memory, mask)  # no pass: no record
    tgt_mask = torch.ones(B, T, dtype=torch.bool)
    assert attn.loss_term(torch.rand(B, T), tgt_mask, record).item() == 0
    assert not record.notes(attn)


def test_hard_attention_rejects_an_unknown_estimator():
    with pytest.raises(NmtError, match="model.attention.estimator: 'policy' is not one of"):
        HardAttention(query_size=D, key_size=D, score=ConcatScore, estimator="policy")


FIXED_CONTEXT_ENCODERS = [
    [],  # the unidirectional GRU of rnnencdec
    ["model.encoder.reverse=true"],
    ["model/encoder=bigru"],
    ["model/encoder=bigru", "model.encoder.reverse=true"],
    ["model/encoder=bilstm", "model.encoder.reverse=true", "model.encoder.num_layers=2"],
]


@pytest.mark.parametrize("encoder", FIXED_CONTEXT_ENCODERS, ids=" ".join)
@pytest.mark.parametrize("model", ["rnnencdec", "luong"])
def test_the_fixed_context_is_where_the_reading_ends_whatever_its_order(model, encoder):
    """Without attention the context is the encoder's last state of its reading in each
    direction (its final states), so it depends on every source word, reversed or not."""
    from toys import build, toy_batch

    from nmt.data.batching import make_batch

    layers = [f"model.decoder.num_layers={2 if 'num_layers=2' in ' '.join(encoder) else 1}"]
    overrides = [f"model={model}", "model/attention=none", *encoder]
    net = build(*overrides, *(layers if model == "luong" else []))
    src, _ = toy_batch()
    batch = make_batch(src, None, [0, 1, 2])

    def context(ids: torch.Tensor) -> torch.Tensor:
        enc = net.encode(ids, batch.src_mask)
        query = torch.zeros(ids.size(0), 1)  # the fixed context ignores the query
        c, _ = net.decoder.attention(query, enc.memory, enc.memory, enc.mask)
        return c, enc

    c, enc = context(batch.src)
    h = enc.final[0] if isinstance(enc.final, tuple) else enc.final  # (L * dirs, B, H)
    expected = torch.cat(list(h[-enc.directions :]), dim=-1)  # the top layer's, by direction
    torch.testing.assert_close(c, expected)
    n = len(src[2])
    for j in range(n):  # every position of the longest sentence, its </s> included
        changed = batch.src.clone()
        changed[2, j] = 4 + (changed[2, j] - 3) % 36
        assert not torch.allclose(context(changed)[0][2], c[2]), j
