"""lstm_steps (nmt/fast/encoder.py), the LSTM encoder's training path, against the packed
nn.LSTM, in float32 and under bfloat16 autocast."""

import copy

import pytest
import torch
from toys import CPU, assert_close_in_bfloat16, build, toy_batch

from nmt.data.batching import make_batch
from nmt.devices import autocast
from nmt.fast import accelerate
from nmt.fast import encoder as fast_encoder
from nmt.fast.encoder import lstm_steps, runs_steps


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
