"""What the tests build on: the tiny run of the console-script tests, and small models with
random weights over a toy vocabulary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from nmt.config import CONFIG_DIR
from nmt.data.specials import BOS, EOS
from nmt.models.build import build_model

# A model and task small enough to train in seconds.
TINY = [
    "data=toy_reverse",
    "data.corpus.n_train=400",
    "data.corpus.n_dev=40",
    "data.corpus.n_test=40",
    "tokenizer.vocab_size=30",
    "model.emb_size=16",
    "model.hidden_size=16",
    "trainer.batch_size=16",
    "trainer.max_steps=12",
    "trainer.valid_every=6",
    "trainer.num_threads=1",
]

# The toy model several tests share (tests/conftest.py: learned_run), trained to a real BLEU.
LEARN = [
    *TINY,
    "model.emb_size=32",
    "model.hidden_size=64",
    "trainer.max_steps=null",
    "trainer.max_epochs=10",
    "trainer.valid_every=250",
    "trainer.batch_size=32",
    "data.corpus.n_train=2000",
    "data.corpus.n_test=100",
    "optim.optimizer.lr=0.005",
    "model.init=uniform",
]


def train_toy(run_dir: Path, cache_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`nmt-train *overrides` into `run_dir` (for fixtures wider than a test), which must pass."""
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "nmt.train", *overrides, f"hydra.run.dir={run_dir}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# Models for the equivalence tests: every attention and decoder pairing, weights N(0, 0.3).
V = 40

ATTENTIONS = [
    "none",
    "bahdanau",
    "luong_dot",
    "luong_general",
    "luong_concat",
    "luong_location",
    "local_m",
    "local_p",
]
ZOO = ["scaled_dot", "scaled_dot_projected", "cosine", "kernel", "multihead"]
MODELS = [
    ["model=rnnsearch"],
    ["model=rnnencdec"],
    *[["model=luong", f"model/attention={a}", "model.encoder.num_layers=2"] for a in ATTENTIONS],
    ["model=luong", "model.decoder.input_feed=false", "model/attention=local_p"],
    ["model=luong", "model.decoder.input_feed=false", "model/attention=luong_dot"],
    ["model=luong", "model/encoder=bilstm", "model/attention=luong_dot"],
    ["model=luong", "model/encoder=bigru", "model.encoder.reverse=true"],
    ["model=rnnsearch", "model/attention=local_m", "model.attention.window=1"],
    # the attention zoo's stateless variants, with either decoder
    *[["model=luong", f"model/attention={a}"] for a in ZOO],
    *[["model=rnnsearch", f"model/attention={a}", "model.decoder_size=null"] for a in ZOO],
    ["model=luong", "model/attention=local_p", "model/attention/score=kernel"],
    ["model=rnnsearch", "model/attention=multihead", "model/attention/score=cosine"],
    # hard attention: REINFORCE (per step, and over a whole sequence) and Gumbel
    ["model=luong", "model/attention=hard"],
    ["model=luong", "model.decoder.input_feed=false", "model/attention=hard"],
    ["model=rnnsearch", "model/attention=hard", "model.attention.estimator=gumbel"],
    # stateful attention (the previous weights; the coverage), with either decoder, with and
    # without input feeding, and with the coverage loss through the loss-term hook
    *[["model=luong", f"model/attention={a}"] for a in ("ntm", "coverage")],
    *[["model=rnnsearch", f"model/attention={a}"] for a in ("ntm", "coverage")],
    ["model=luong", "model.decoder.input_feed=false", "model/attention=ntm"],
    ["model=luong", "model/attention=coverage", "model.attention.coverage_loss=1.0"],
    # copying (the pointer-generator output layer)
    ["model=luong", "model.copy=true"],
    ["model=rnnsearch", "model/attention=local_p", "model.copy=true"],
    # self-attention over the encoder's annotations
    ["model=rnnsearch", "model.encoder.self_attention_layers=2"],
    ["model=luong", "model.encoder.self_attention_layers=1", "model/encoder=bilstm"],
]
IDS = [" ".join(m).replace("model", "") for m in MODELS]


def model_cfg(*overrides: str):
    """The `model` node of train.yaml at embeddings 8, hidden 12, with `overrides`."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model.emb_size=8", "model.hidden_size=12", *overrides])
    return cfg.model


def build(*overrides: str):
    """model_cfg's model over V ids, weights N(0, 0.3), in eval mode."""
    torch.manual_seed(0)
    cfg = model_cfg(*overrides)
    model = build_model(cfg, src_vocab_size=V, tgt_vocab_size=V, joint_vocab=True).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model


def toy_batch() -> tuple[list[list[int]], list[list[int]]]:
    """Three source and target id sequences of different lengths."""
    g = torch.Generator().manual_seed(0)
    src = [torch.randint(4, V, (n,), generator=g).tolist() + [EOS] for n in (5, 2, 7)]
    tgt = [[BOS] + torch.randint(4, V, (n,), generator=g).tolist() + [EOS] for n in (3, 6, 1)]
    return src, tgt


# Models for the search tests: peaked distributions over SEARCH_V ids, varied lengths.
SEARCH_V = 7

# How close two computations of one hypothesis's score (a sum of float32 log-probabilities) must
# be: kernels for other shapes (a batch against one sentence, packed against torch's products)
# accumulate in other orders, and the peaked models' logits reach the hundreds (multi-head).
SCORE_TOLERANCE = dict(rel=5e-5, abs=1e-5)

SEARCH_MODELS = [
    ["model=rnnsearch"],
    ["model=luong", "model/attention=local_p"],
    ["model=luong", "model/attention=local_m", "model.decoder.input_feed=false"],
    ["model=luong", "model/attention=luong_location"],
    ["model=rnnsearch", "model/attention=multihead", "model.attention.heads=2"],
    ["model=rnnsearch", "model/attention=ntm"],
    ["model=luong", "model/attention=coverage", "model.decoder.input_feed=false"],
    ["model=rnnsearch", "model.copy=true"],
    ["model=luong", "model/attention=local_p", "model.copy=true"],
]


def model_for(*overrides: str, vocab: int = SEARCH_V, seed: int = 0):
    """A model at embeddings 8, hidden 10, weights N(0, 0.8), in eval mode."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model.emb_size=8", "model.hidden_size=10", *overrides])
    torch.manual_seed(seed)
    model = build_model(
        cfg.model, src_vocab_size=vocab, tgt_vocab_size=vocab, joint_vocab=True
    ).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.8)
    return model


def sources(n: int = 5, seed: int = 1, vocab: int = SEARCH_V) -> list[list[int]]:
    """n source id sequences of 1-6 ids and </s>."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 7, (n,), generator=g).tolist()
    return [torch.randint(4, vocab, (k,), generator=g).tolist() + [EOS] for k in lengths]


# Precision: losses, gradients and bfloat16's tolerance.
CPU = torch.device("cpu")


def loss_and_grads(f, tensors: list) -> tuple:
    """f()'s detached loss and the gradients it leaves on `tensors`, which it then clears."""
    loss = f()
    loss.backward()
    grads = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    return loss.detach(), grads


def assert_close_in_bfloat16(got, want) -> None:
    """Within bfloat16's rounding (8 significant bits), relative to the tensor's scale."""
    torch.testing.assert_close(got, want, rtol=3e-2, atol=3e-2 * float(want.detach().abs().max()))


def kill_at_first_checkpoint(overrides: list[str], run_dir: Path, cache_dir: Path) -> None:
    """Start `nmt-train *overrides` into `run_dir` and SIGKILL its whole process group (its
    ranks too, as a cluster kills a job) as soon as its first last.pt exists."""
    kill_when(overrides, run_dir, cache_dir, lambda: (run_dir / "checkpoints" / "last.pt").exists())


def kill_when(overrides: list[str], run_dir: Path, cache_dir: Path, ready) -> None:
    """Start `nmt-train *overrides` into `run_dir` and SIGKILL its whole process group as soon
    as `ready()` is true (polled every 50 ms; the run must not end first)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nmt.train", *overrides, f"hydra.run.dir={run_dir}"],
        env=os.environ | {"NMT_CACHE_DIR": str(cache_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
