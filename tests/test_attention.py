"""Contract and formula tests of the attention variants (DESIGN.md's interface)."""

import pytest
import torch

from nmt.attention import BahdanauAttention, NoAttention

B, S, T, DQ, DK = 3, 6, 4, 5, 7
VARIANTS = [NoAttention, BahdanauAttention]


def inputs(batch=B, src_len=S, seed=0):
    g = torch.Generator().manual_seed(seed)
    memory = torch.randn(batch, src_len, DK, generator=g)
    lengths = torch.tensor([src_len, max(1, src_len - 2), 1][:batch])
    mask = torch.arange(src_len).unsqueeze(0) < lengths.unsqueeze(1)
    return memory, mask


def build(cls):
    torch.manual_seed(0)
    attn = cls(query_size=DQ, key_size=DK)
    for p in attn.parameters():  # away from any zero init, so every formula term matters
        torch.nn.init.normal_(p, std=0.5)
    return attn


@pytest.mark.parametrize("cls", VARIANTS)
def test_contract_shapes_and_weights(cls):
    attn = build(cls)
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    context, weights = attn(torch.randn(B, DQ), keys, memory, mask, step=2)
    assert context.shape == (B, DK) and weights.shape == (B, S)
    assert (weights >= 0).all()
    assert (weights[~mask] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    torch.testing.assert_close(context, torch.einsum("bs,bsd->bd", weights, memory))


@pytest.mark.parametrize("cls", VARIANTS)
def test_whole_sequence_equals_single_steps(cls):
    attn = build(cls)
    memory, mask = inputs()
    keys = attn.project_keys(memory)
    query = torch.randn(B, T, DQ)
    context, weights = attn(query, keys, memory, mask, step=torch.arange(T))
    assert context.shape == (B, T, DK) and weights.shape == (B, T, S)
    for t in range(T):
        c_t, w_t = attn(query[:, t], keys, memory, mask, step=t)
        torch.testing.assert_close(context[:, t], c_t)
        torch.testing.assert_close(weights[:, t], w_t)


@pytest.mark.parametrize("cls", VARIANTS)
def test_gradients_reach_every_parameter_and_tiny_inputs_work(cls):
    attn = build(cls)
    memory, mask = inputs(batch=1, src_len=1)
    memory.requires_grad_(True)
    context, weights = attn(torch.randn(1, DQ), attn.project_keys(memory), memory, mask)
    assert weights.shape == (1, 1) and float(weights.detach()) == 1.0
    memory2, mask2 = inputs()
    memory2.requires_grad_(True)
    context, _ = attn(torch.randn(B, DQ), attn.project_keys(memory2), memory2, mask2)
    context.sum().backward()
    assert memory2.grad.abs().sum() > 0
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bahdanau_matches_the_equation():
    attn = build(BahdanauAttention)
    memory, mask = inputs()
    query = torch.randn(B, DQ)
    context, weights = attn(query, attn.project_keys(memory), memory, mask)
    W_a, U_a, b, v_a = attn.W_a.weight, attn.U_a.weight, attn.U_a.bias, attn.v_a.weight[0]
    for i in range(B):
        n = int(mask[i].sum())
        e = torch.stack(
            [v_a @ torch.tanh(W_a @ query[i] + U_a @ memory[i, j] + b) for j in range(n)]
        )
        alpha = torch.softmax(e, 0)
        torch.testing.assert_close(weights[i, :n], alpha)
        torch.testing.assert_close(context[i], alpha @ memory[i, :n])


def test_none_is_the_last_real_state():
    attn = build(NoAttention)
    memory, mask = inputs()
    context, weights = attn(torch.randn(B, DQ), memory, memory, mask)
    last = mask.sum(-1) - 1
    for i in range(B):
        torch.testing.assert_close(context[i], memory[i, last[i]])
        assert weights[i, last[i]] == 1
