"""The packed oneDNN products of decoding (nmt/fast/packed.py) against torch's plain ones, and
the fast layer's search against the reference models'."""

import copy

import pytest
import torch
import torch.nn.functional as F
from toys import SCORE_TOLERANCE, SEARCH_MODELS, SEARCH_V, model_for, sources

from nmt.data.batching import make_batch
from nmt.data.specials import BOS
from nmt.decoding.search import beam_search, greedy
from nmt.fast import accelerate, packed
from nmt.fast.models import _CELL_PACKS, PackedLinear

pytestmark = pytest.mark.skipif(not packed.available(), reason="no oneDNN packed linear")


@pytest.mark.parametrize("rows", [1, 3, 64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_and_follows_weight_updates(rows, bias):
    torch.manual_seed(0)
    layer = accelerate(torch.nn.Linear(48, 80, bias=bias))
    assert type(layer) is PackedLinear
    x = torch.randn(rows, 48)
    with torch.no_grad():
        assert packed.usable(x)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
        layer.weight.mul_(-2.0)  # an optimizer step or a load: the pack must be remade
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
        torch.testing.assert_close(layer(x.view(1, rows, 48))[0], layer(x))  # (..., in) inputs


def test_packs_follow_a_fused_optimizer_step():
    """torch's fused Adam writes the weights without bumping their version counters; the fast
    layer remakes its packs after every optimizer step anyway."""
    torch.manual_seed(0)
    layer = accelerate(torch.nn.Linear(48, 80))
    x = torch.randn(4, 48)
    try:
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)
    except RuntimeError:  # torch < 2.4 has no fused Adam on CPU
        pytest.skip("no fused Adam on CPU in this torch")
    with torch.no_grad():
        layer(x)  # packed
    layer(x).sum().backward()
    optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_linear_under_autograd_is_torch_own():
    layer = accelerate(torch.nn.Linear(6, 4))
    x = torch.randn(3, 6, requires_grad=True)
    assert not packed.usable(x)
    out = layer(x)
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()
    assert layer.weight.grad is not None and x.grad is not None


@pytest.mark.parametrize("rows", [1, 5])
def test_lstm_cell_matches_torch(rows):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(12, 16)
    x, h, c = torch.randn(rows, 12), torch.randn(rows, 16), torch.randn(rows, 16)
    with torch.no_grad():
        got = packed.lstm_cell(x, h, c, packed.CellPack(), *lstm.all_weights[0])
        want = torch.lstm_cell(x, (h, c), *lstm.all_weights[0])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("rest", [0, 4])
@pytest.mark.parametrize("rows", [1, 5])
def test_lstm_cell_from_ids_matches_torch_and_follows_weight_updates(rows, rest):
    """The embedding's share of the gates from the table, the rest of the input (none without
    input feeding) through the packed product: torch's cell of [E y; rest]."""
    torch.manual_seed(0)
    embedding, lstm = torch.nn.Embedding(11, 6), torch.nn.LSTM(6 + rest, 16)
    y, x = torch.randint(0, 11, (rows,)), torch.randn(rows, rest)
    h, c = torch.randn(rows, 16), torch.randn(rows, 16)
    packs = packed.CellPack()
    updates = [embedding.weight, lstm.bias_hh_l0, lstm.weight_ih_l0, lstm.weight_hh_l0, None]
    for changed in updates:  # each source in turn: the table and pack must follow
        with torch.no_grad():
            got = packed.lstm_cell_from_ids(
                y, x, h, c, packs, embedding.weight, *lstm.all_weights[0]
            )
            full = torch.cat([embedding(y), x], dim=1)
            want = torch.lstm_cell(full, (h, c), *lstm.all_weights[0])
            torch.testing.assert_close(got, want)
            if changed is not None:
                changed.add_(0.5)


def test_decoder_steps_take_the_table_only_in_evaluation():
    """Training mode keeps the embedding's dropout, so its steps take the embedding itself."""
    model = accelerate(model_for("model=luong", "model.decoder.dropout=0.5"))
    batch = make_batch(sources(4), None, list(range(4)))
    with torch.no_grad():
        model.train()
        greedy(model, batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=3)
        assert model.decoder not in _CELL_PACKS
        model.eval()
        greedy(model, batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=3)
        table, known, _ = _CELL_PACKS[model.decoder][0].table.state.value
        assert table.shape == (SEARCH_V, 4 * model.decoder.output_size) and known[BOS]


bfloat16 = pytest.param(
    "bfloat16",
    marks=pytest.mark.skipif(
        not packed.available(torch.bfloat16), reason="no packed bfloat16 linear on this CPU"
    ),
)


@pytest.mark.parametrize("precision", ["float32", bfloat16])
@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_search_hypotheses_equal_the_reference(overrides, precision):
    """The fast layer's search (packed products, the gate table, block picks) finds the
    reference's hypotheses; decode.precision=bfloat16 included: its packed products in bfloat16
    against torch's under autocast."""
    model = model_for(*overrides)
    accelerated = accelerate(copy.deepcopy(model))
    batch = make_batch(sources(8), None, list(range(8)))
    kw = dict(max_len_ratio=1.5, max_len_extra=3, precision=precision)
    beam_kw = dict(beam_size=3, length_penalty="gnmt", n_best=3, **kw)
    fast_greedy = greedy(accelerated, batch.src, batch.src_mask, **kw)
    fast_beam = beam_search(accelerated, batch.src, batch.src_mask, **beam_kw)
    plain_greedy = greedy(model, batch.src, batch.src_mask, **kw)
    plain_beam = beam_search(model, batch.src, batch.src_mask, **beam_kw)
    assert [h.ids for h in fast_greedy] == [h.ids for h in plain_greedy]
    for fast, plain in zip(fast_beam, plain_beam, strict=True):
        assert [h.ids for h in fast] == [h.ids for h in plain]
        assert [h.score for h in fast] == pytest.approx([h.score for h in plain], **SCORE_TOLERANCE)
    for fast, plain in zip(fast_greedy, plain_greedy, strict=True):
        torch.testing.assert_close(fast.attention, plain.attention)
