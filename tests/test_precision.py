"""trainer.precision=bfloat16: the products run in bfloat16 under autocast, and the loss, the
recurrent states and every gradient stay float32 and close to the float32 step's."""

import copy
import json
import math

import pytest
import torch
from test_model import IDS, MODELS, build, toy_batch

from nmt.config import TrainerConfig, defaults
from nmt.data.batching import make_batch
from nmt.decoding.search import greedy
from nmt.devices import autocast
from nmt.fast import accelerate
from nmt.fast import encoder as fast_encoder
from nmt.fast.encoder import lstm_steps, runs_steps
from nmt.fast.loss import linear_cross_entropy, plain_linear_cross_entropy
from nmt.fast.step_sum import constant
from nmt.training.trainer import train_step

CPU = torch.device("cpu")


def loss_and_grads(f, tensors):
    loss = f()
    loss.backward()
    grads = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    return loss.detach(), grads


def assert_close_in_bfloat16(got, want):
    """Within bfloat16's rounding (8 significant bits), relative to the tensor's scale."""
    torch.testing.assert_close(got, want, rtol=3e-2, atol=3e-2 * float(want.abs().max()))


def test_fused_loss_under_autocast_matches_torchs_own_autocast():
    torch.manual_seed(0)
    N, D, V = 37, 16, 50
    x = torch.randn(N, D, requires_grad=True)
    weight = (0.3 * torch.randn(V, D)).requires_grad_()
    bias = torch.randn(V, requires_grad=True)
    y = torch.randint(V, (N,))
    tensors = (x, weight, bias)

    def under_autocast(f):
        with autocast("bfloat16", CPU):
            return f()

    fused = loss_and_grads(
        lambda: under_autocast(lambda: linear_cross_entropy(x, weight, bias, y, 0.1, chunk=8)),
        tensors,
    )
    plain = loss_and_grads(
        lambda: under_autocast(lambda: plain_linear_cross_entropy(x, weight, bias, y, 0.1)),
        tensors,
    )
    exact = loss_and_grads(lambda: linear_cross_entropy(x, weight, bias, y, 0.1), tensors)

    assert fused[0].dtype == torch.float32
    assert [g.dtype for g in fused[1]] == [torch.float32] * 3
    assert fused[0] != exact[0]  # the logits did come from bfloat16 products
    for got, want in ((fused, plain), (fused, exact)):
        assert_close_in_bfloat16(got[0], want[0])
        for g, w in zip(got[1], want[1], strict=True):
            assert_close_in_bfloat16(g, w)


def test_an_lstm_cell_on_bfloat16_constant_weights_keeps_a_float32_state():
    """Teacher forcing's cell with the weights cast once to bfloat16 (nmt.fast.models): the gate
    products in bfloat16, the state in float32, close to torch's float32 cell."""
    torch.manual_seed(1)
    B, n_in, H = 3, 5, 4
    x, h, c = torch.randn(B, n_in), torch.randn(B, H), torch.randn(B, H)
    weights = [
        torch.randn(4 * H, n_in, requires_grad=True),
        torch.randn(4 * H, H, requires_grad=True),
        torch.randn(4 * H, requires_grad=True),
        torch.randn(4 * H, requires_grad=True),
    ]
    want_h, want_c = torch.lstm_cell(x, (h, c), *weights)
    # constant float32 weights: the same arithmetic as torch's cell
    shared = [constant(w) if w.dim() == 2 else w for w in weights]
    got_h, got_c = torch.lstm_cell(x, (h, c), *shared)
    torch.testing.assert_close(got_h, want_h)
    torch.testing.assert_close(got_c, want_c)
    low = [w.to(torch.bfloat16) for w in weights]
    with autocast("bfloat16", CPU):
        shared = [constant(w) if w.dim() == 2 else w for w in low]
        low_h, low_c = torch.lstm_cell(x, (h, c), *shared)
    assert low_h.dtype == low_c.dtype == torch.float32
    assert not torch.equal(low_c, want_c)
    assert_close_in_bfloat16(low_h, want_h)
    assert_close_in_bfloat16(low_c, want_c)


@pytest.mark.parametrize(("layers", "bidirectional"), [(1, True), (2, True), (2, False)])
def test_lstm_steps_equals_the_packed_lstm(layers, bidirectional):
    """The encoder's loop under autocast, run in float64 outside it: torch's packed nn.LSTM."""
    torch.manual_seed(2)
    rnn = torch.nn.LSTM(6, 5, layers, batch_first=True, bidirectional=bidirectional).double()
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(4, 7, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(7) < lengths.unsqueeze(1)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths, batch_first=True, enforce_sorted=False
    )
    out, (h, c) = rnn(packed)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=7)
    got, (got_h, got_c) = lstm_steps(rnn, x, mask)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)  # zero at padding too
    torch.testing.assert_close(got_h, h, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_c, c, rtol=0, atol=1e-12)

    w = torch.randn_like(want)
    tensors = [x, *rnn.parameters()]
    want_grads = torch.autograd.grad((want * w).sum() + h.sum() + (c * c).sum(), tensors)
    got_grads = torch.autograd.grad((got * w).sum() + got_h.sum() + (got_c**2).sum(), tensors)
    for g, want_g in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, want_g, rtol=0, atol=1e-12)


def test_the_lstm_encoder_under_cpu_autocast_runs_its_products_in_bfloat16():
    model = accelerate(build("model=luong", "model/encoder=bilstm").eval())
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    with torch.no_grad():
        want = model.encode(batch.src, batch.src_mask)
    with torch.no_grad(), autocast("bfloat16", CPU):
        assert runs_steps(model.encoder.rnn, batch.src)
        got = model.encode(batch.src, batch.src_mask)
    assert got.memory.dtype == got.final[0].dtype == torch.float32
    assert not torch.equal(got.memory, want.memory)
    assert_close_in_bfloat16(got.memory, want.memory)
    assert_close_in_bfloat16(got.final[1], want.final[1])
    assert not got.memory[~batch.src_mask].any()


@pytest.mark.parametrize("layers", [1, 2])
def test_the_lstm_encoder_trains_through_lstm_steps_and_decodes_through_the_packed_call(layers):
    reference = build("model=luong", "model/encoder=bilstm", f"model.encoder.num_layers={layers}")
    model = accelerate(copy.deepcopy(reference))
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    with torch.no_grad():
        assert not runs_steps(model.encoder.rnn, batch.src)
        want = model.encode(batch.src, batch.src_mask)  # the packed call
    assert runs_steps(model.encoder.rnn, batch.src)
    got = model.encode(batch.src, batch.src_mask)
    torch.testing.assert_close(got.memory, want.memory, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.final, want.final, rtol=0, atol=1e-6)
    packed_out = reference.encode(batch.src, batch.src_mask)  # the packed call with gradients
    assert packed_out.memory.grad_fn is not None
    want_grads = torch.autograd.grad(
        packed_out.memory.square().sum(), list(reference.encoder.rnn.parameters())
    )
    got_grads = torch.autograd.grad(got.memory.square().sum(), list(model.encoder.rnn.parameters()))
    for g, want_g in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, want_g, rtol=1e-5, atol=1e-6)


def test_lstm_steps_input_rows_padding_changes_nothing(monkeypatch):
    torch.manual_seed(3)
    rnn = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    x = torch.randn(4, 7, 6)
    mask = torch.arange(7) < torch.tensor([[7], [3], [5], [1]])
    with autocast("bfloat16", CPU):
        padded = lstm_steps(rnn, x, mask)  # 28 rows padded to INPUT_ROWS
        monkeypatch.setattr(fast_encoder, "INPUT_ROWS", 1)
        unpadded = lstm_steps(rnn, x, mask)
    torch.testing.assert_close(padded, unpadded, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_every_model_under_autocast_is_close_to_float32(overrides, fast):
    model = build(*overrides)
    model = accelerate(model) if fast else model
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    params = list(model.parameters())

    def low():
        with autocast("bfloat16", CPU):
            return model.loss(batch)

    want_loss, want_grads = loss_and_grads(lambda: model.loss(batch), params)
    got_loss, got_grads = loss_and_grads(low, params)

    assert got_loss.dtype == torch.float32
    torch.testing.assert_close(got_loss, want_loss, rtol=2e-3, atol=0)  # measured: <= 5e-4
    got = torch.cat([g.flatten() for g in got_grads])
    want = torch.cat([g.flatten() for g in want_grads])
    assert got.dtype == torch.float32
    assert not torch.equal(got, want)  # the products did run in bfloat16
    # measured: 0.003 to 0.008 of the gradient's norm
    assert float(torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want)) < 0.02


def test_a_bfloat16_training_step_keeps_float32_weights_and_learns():
    model = build("model=luong", "model/encoder=bilstm").train()
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    cfg = defaults(TrainerConfig, precision="bfloat16")
    losses = [train_step(model, optimizer, batch, cfg, clip_norm=5.0)[0] for _ in range(6)]
    assert losses[-1] < losses[0]
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {s["exp_avg"].dtype for s in optimizer.state.values()} == {torch.float32}


def test_nmt_train_with_bfloat16(run_cli, tmp_path):
    from conftest import TINY

    run_cli("train", *TINY, "trainer.precision=bfloat16", f"hydra.run.dir={tmp_path}/run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 12 and math.isfinite(results["test_ppl"])


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_decode_precision_sets_the_decoder_products_dtype(precision, fast):
    """decode.precision=bfloat16: the decoder step's and the output layer's products run in
    bfloat16, with the fast layer as in the reference; the encoder's stay float32."""
    model = build(*MODELS[2])  # luong, input feeding, two layers
    model = accelerate(model) if fast else model
    seen: dict[str, set] = {"generator": set(), "W_c": set(), "memory": set()}
    model.generator.register_forward_hook(lambda m, a, out: seen["generator"].add(out.dtype))
    model.decoder.W_c.register_forward_hook(lambda m, a, out: seen["W_c"].add(out.dtype))
    model.encoder.register_forward_hook(lambda m, a, out: seen["memory"].add(out.memory.dtype))
    src, _ = toy_batch()
    batch = make_batch(src, None, list(range(len(src))))
    want = {"float32": torch.float32, "bfloat16": torch.bfloat16}[precision]
    greedy(
        model, batch.src, batch.src_mask, max_len_ratio=1.0, max_len_extra=2, precision=precision
    )
    assert seen["generator"] == seen["W_c"] == {want}
    assert seen["memory"] == {torch.float32}
