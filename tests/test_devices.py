"""trainer.precision and decode.precision (nmt/devices.py): the products run in bfloat16 under
autocast, and the loss, the recurrent states and every gradient stay float32 and close to the
float32 step's, on every model, fast layer on and off."""

import json
import math

import pytest
import torch
from toys import CPU, IDS, MODELS, TINY, build, loss_and_grads, toy_batch

from nmt.config import TrainerConfig, defaults
from nmt.data.batching import make_batch
from nmt.decoding.search import greedy
from nmt.devices import autocast
from nmt.fast import accelerate
from nmt.training.step import train_step


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
    # hard attention's arg-max (evaluation mode) gives its score no gradient, in either precision
    assert [g is None for g in got_grads] == [g is None for g in want_grads]
    got = torch.cat([g.flatten() for g in got_grads if g is not None])
    want = torch.cat([g.flatten() for g in want_grads if g is not None])
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
    from toys import TINY

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


def test_float16_is_refused_off_cuda(run_cli, tmp_path):
    proc = run_cli("train", *TINY, "device=cpu", "trainer.precision=float16", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "trainer.precision=float16: float16 autocast is for CUDA devices" in proc.stderr
