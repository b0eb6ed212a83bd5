"""The stateful extension of the attention interface (nmt/models/attention/stateful.py): NTM
addressing and coverage keep the contract at every step, follow their papers' equations
written out from their own parameters, and `attend` carries their state per beam."""

import pytest
import torch
import torch.nn.functional as F

from nmt.errors import NmtError
from nmt.models.attention import (
    CoverageAttention,
    NTMAttention,
    PassRecord,
    attend,
    attention_state,
    is_stateful,
)

B, S, T, D = 3, 9, 5, 6
LENGTHS = [S, 4, 1]
NAMES = ["ntm", "coverage", "coverage_loss"]


def build(name):
    torch.manual_seed(0)
    kw = {"query_size": D, "key_size": D}
    attn = {
        "ntm": lambda: NTMAttention(**kw),
        "coverage": lambda: CoverageAttention(**kw, hidden_size=4),
        "coverage_loss": lambda: CoverageAttention(**kw, coverage_loss=0.5),
    }[name]()
    for p in attn.parameters():  # away from any zero init, so every formula term matters
        torch.nn.init.normal_(p, std=0.5)
    return attn.eval()


def inputs(lengths=LENGTHS, src_len=S):
    g = torch.Generator().manual_seed(0)
    memory = torch.randn(len(lengths), src_len, D, generator=g)
    mask = torch.arange(src_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return memory, mask


def run(attn, queries, memory, mask, record=None):
    """Step through queries (B, T, D) one step at a time -> contexts, weights, final state;
    `record`, a teacher-forced pass's PassRecord."""
    keys = attn.project_keys(memory)
    state = attention_state(attn, memory, mask)
    contexts, weights = [], []
    for t, q in enumerate(queries.unbind(1)):
        context, w, state = attend(attn, q, keys, memory, mask, t, state, record)
        contexts.append(context)
        weights.append(w)
    return torch.stack(contexts, 1), torch.stack(weights, 1), state


@pytest.mark.parametrize("name", NAMES)
def test_contract_at_every_step(name):
    attn = build(name)
    assert is_stateful(attn)
    memory, mask = inputs()
    context, weights, state = run(attn, torch.randn(B, T, D), memory, mask)
    assert context.shape == (B, T, D) and weights.shape == (B, T, S)
    assert (weights >= 0).all() and (weights[~mask[:, None].expand_as(weights)] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, T))
    torch.testing.assert_close(context, torch.einsum("bts,bsd->btd", weights, memory))
    if name.startswith("coverage"):  # the state is the sum of the weights so far
        torch.testing.assert_close(state[0], weights.sum(1))
    else:  # NTM's: the last weights
        torch.testing.assert_close(state[0], weights[:, -1])


@pytest.mark.parametrize("name", NAMES)
def test_independent_queries_of_one_step_each_with_its_state(name):
    """A (B, T, D) query is T queries of one step, each with its own (B, T, S) state."""
    attn = build(name)
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    query = torch.randn(B, T, D)
    state = (torch.softmax(torch.randn(B, T, S).masked_fill(~mask[:, None], -1e9), -1),)
    context, weights, (new,) = attn(query, keys, memory, mask, step=2, state=state)
    for j in range(T):
        c_j, w_j, (n_j,) = attn(query[:, j], keys, memory, mask, step=2, state=(state[0][:, j],))
        torch.testing.assert_close(context[:, j], c_j)
        torch.testing.assert_close(weights[:, j], w_j)
        torch.testing.assert_close(new[:, j], n_j)


@pytest.mark.parametrize("name", NAMES)
def test_beams_sharing_a_memory_row_carry_their_own_states(name):
    attn, k = build(name), 4
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    copies = torch.arange(B).repeat_interleave(k)
    query = torch.randn(B * k, D)
    state = attention_state(attn, memory[copies], mask[copies])
    for t in range(3):  # states that differ between the beams after the first step
        got_c, got_w, got_state = attend(attn, query, keys, memory, mask, t, state)
        want = attn(query, keys[copies], memory[copies], mask[copies], step=t, state=state)
        torch.testing.assert_close(got_c, want[0])
        torch.testing.assert_close(got_w, want[1])
        torch.testing.assert_close(got_state[0], want[2][0])
        state, query = got_state, query + torch.randn_like(query)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_and_tiny_inputs_work(name):
    attn = build(name)
    memory, mask = inputs(lengths=[1], src_len=1)
    context, weights, _ = run(attn, torch.randn(1, 2, D), memory, mask)
    assert context.shape == (1, 2, D) and (weights == 1).all()

    memory, mask = inputs()
    memory.requires_grad_(True)
    context, _, _ = run(attn, torch.randn(B, T, D), memory, mask)  # coverage's w_c from t = 1
    context.pow(2).sum().backward()
    assert memory.grad.abs().sum() > 0
    for pname, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def ntm_reference(attn, q, memory, n, w_prev):
    """Graves et al.'s eqs. (5)-(9) for one sentence of n real positions: weights (n,)."""
    sc = attn.content
    beta = F.softplus(sc.w_beta.weight[0] @ q + sc.w_beta.bias[0])
    cos = torch.stack(
        [torch.cosine_similarity(q, sc.W_k.weight @ memory[j], dim=0) for j in range(n)]
    )
    w_c = torch.softmax(beta * cos, 0)  # (5)
    g = torch.sigmoid(attn.w_g.weight[0] @ q + attn.w_g.bias[0])
    w_g = g * w_c + (1 - g) * w_prev  # (7)
    r = torch.softmax(attn.W_r.weight @ q + attn.W_r.bias, 0)  # shifts -1, 0, +1
    shifted = torch.stack(
        [
            sum(
                w_g[j] * r[k]
                for j in range(n)
                for k, o in enumerate((-1, 0, 1))
                if (j + o) % n == i
            )
            for i in range(n)
        ]
    )  # (8): w~(i) = sum_j w_g(j) r(i - j), circular
    gamma = 1 + F.softplus(attn.w_gamma.weight[0] @ q + attn.w_gamma.bias[0])
    sharp = shifted**gamma
    return sharp / sharp.sum()  # (9)


def coverage_reference(attn, q, memory, n, coverage):
    """See et al.'s eq. (11) for one sentence: weights (n,)."""
    e = torch.stack(
        [
            attn.v.weight[0]
            @ torch.tanh(
                attn.W_h.weight @ memory[j]
                + attn.W_h.bias
                + attn.W_q.weight @ q
                + attn.w_c * coverage[j]
            )
            for j in range(n)
        ]
    )
    return torch.softmax(e, 0)


@pytest.mark.parametrize("name", NAMES)
def test_formula(name):
    attn = build(name)
    memory, mask = inputs()
    queries = torch.randn(B, T, D)
    with torch.no_grad():
        _, weights, _ = run(attn, queries, memory, mask)
        for i, n in enumerate(LENGTHS):
            state = torch.eye(n)[0] if name == "ntm" else torch.zeros(n)  # w_0; c_0
            for t in range(T):
                if name == "ntm":
                    want = ntm_reference(attn, queries[i, t], memory[i], n, state)
                    state = want
                else:
                    want = coverage_reference(attn, queries[i, t], memory[i], n, state)
                    state = state + want
                torch.testing.assert_close(weights[i, t, :n], want)


def test_coverage_loss_is_the_overlap_of_weights_and_coverage():
    """See et al. eq. (12): lambda sum_t sum_s min(a_t(s), c_t(s)) over real target tokens,
    noted only in a pass with gradients, in that pass's record."""
    attn = build("coverage_loss")
    memory, mask = inputs()
    tgt_mask = torch.arange(T) < torch.tensor([T, 3, 1]).unsqueeze(1)  # (B, T)
    record = PassRecord()
    _, weights, _ = run(attn, torch.randn(B, T, D), memory, mask, record)
    coverage = torch.cumsum(weights, 1) - weights  # c_t: the steps before t
    want = 0.5 * (torch.minimum(weights, coverage).sum(-1) * tgt_mask).sum()
    term = attn.coverage_loss.loss_term(torch.zeros(B, T), tgt_mask, record)
    torch.testing.assert_close(term, want)
    assert want > 0
    record = PassRecord()
    with torch.no_grad():
        run(attn, torch.randn(B, T, D), memory, mask, record)
    assert attn.coverage_loss.loss_term(torch.zeros(B, T), tgt_mask, record).item() == 0


def test_a_negative_coverage_loss_is_one_clear_error():
    with pytest.raises(NmtError, match="model.attention.coverage_loss: must be >= 0"):
        CoverageAttention(query_size=D, key_size=D, coverage_loss=-1)
