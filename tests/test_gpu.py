"""CUDA paths (cuDNN RNNs, bfloat16 autocast) give the same numbers on the GPU; skipped without
one."""

import pytest
import torch
from toys import build, toy_batch

from nmt.data.batching import make_batch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=rnnsearch"],
        ["model=luong", "model/encoder=bilstm", "model.decoder.input_feed=false"],
    ],
)
def test_cuda_forward_and_gradients_match_cpu(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    cpu_loss = model.loss(batch)
    cpu_loss.backward()
    cpu_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.cuda()
    gpu_loss = model.loss(batch.to(torch.device("cuda")))
    gpu_loss.backward()
    torch.testing.assert_close(gpu_loss.cpu(), cpu_loss, rtol=1e-4, atol=1e-4)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad.cpu(), cpu_grads[name], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_run_on_cuda(run_cli, tmp_path, precision):
    from toys import TINY

    run_cli(
        "train",
        *TINY,
        "device=cuda",
        f"trainer.precision={precision}",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert (tmp_path / "run" / "results.json").is_file()


def test_cuda_autocast_is_close_to_float32():
    from nmt.devices import autocast

    model = build("model=luong", "model/encoder=bilstm").cuda()
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2]).to(torch.device("cuda"))
    want = model.loss(batch)
    with autocast("bfloat16", torch.device("cuda")):
        got = model.loss(batch)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=2e-3, atol=0)
