"""CUDA paths (cuDNN RNNs, bfloat16 and float16 autocast, the gradient scaler, pinned batches)
train, resume and decode as on the CPU; skipped without a GPU."""

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


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
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


def test_float16_training_with_a_scaler_and_resume_on_cuda(run_cli, tmp_path):
    from toys import TINY

    from nmt.checkpoint import load_checkpoint

    run = [*TINY, "device=cuda", "trainer.precision=float16"]
    run_cli("train", *run, "trainer.max_steps=18", f"hydra.run.dir={tmp_path}/straight")
    run_cli("train", *run, f"hydra.run.dir={tmp_path}/halves")
    run_cli("train", f"resume={tmp_path}/halves", "trainer.max_steps=18")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "halves" / "checkpoints" / "last.pt")
    assert "scaler" in resumed and resumed["step"] == straight["step"] == 18
    for name, tensor in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=1e-3, atol=1e-4)


def test_decoding_on_cuda_matches_cpu(learned_run):
    from nmt import Translator

    run_dir, _ = learned_run
    lines = (run_dir / "test.src").read_text().splitlines()[:20]
    best = run_dir / "checkpoints" / "best.pt"
    on = {d: Translator.from_checkpoint(best, device=d) for d in ("cpu", "cuda")}
    found = {d: on[d].translate(lines, beam_size=4) for d in on}
    same = sum(a[0].text == b[0].text for a, b in zip(found["cpu"], found["cuda"], strict=True))
    assert same >= 18  # near-ties may break the other way
    scores = {d: on[d].score(lines, lines).perplexity for d in on}
    assert scores["cuda"] == pytest.approx(scores["cpu"], rel=1e-3)


def test_batches_are_pinned_for_the_copy():
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2]).pin_memory()
    assert batch.src.is_pinned() and batch.tgt_out.is_pinned()
