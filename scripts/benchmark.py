#!/usr/bin/env python3
"""Speed benchmark on the peer protocol (../shared/bench-peers/README.md): English (WEB) ->
French (Segond) Bible verses, test = Mark, dev = Ruth + Philemon, joint SentencePiece BPE 8000,
pairs of at most 50 pieces a side; embeddings 256, 1-layer bidirectional LSTM encoder 256 per
direction, 1-layer LSTM decoder 512, Luong general attention with input feeding, dropout 0.2,
Adam 1e-3, clip 5, batches of 64 sentences.

It trains for --steps updates after --warmup, decodes the test book greedily and with beam 5,
and prints and writes (--out) as JSON: target and source+target tokens/s (median over steps),
padding fraction, peak RSS, sentences/s, the model's FLOPs per target token and the fraction of
a float32 matmul peak measured in the same run. A benchmark, not a test: compare figures only
within one run. --peers DIR also runs the peers' scripts of that folder, one after the other.

    python scripts/benchmark.py --steps 300 --out bench.json
    python scripts/benchmark.py --peers ../shared/bench-peers --minutes 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import nmt.model
from nmt.allocator import keep_freed_memory
from nmt.batching import epoch_batches, make_batch, sorted_batches
from nmt.config import CONFIG_DIR, DecodeConfig, TokenizerConfig, TrainerConfig, default_cache_dir
from nmt.data.bible import load_bible
from nmt.model import build_model, count_parameters
from nmt.search import decode
from nmt.tokenizer import Tokenizer
from nmt.trainer import train_step

PROTOCOL = [
    "model=luong",
    "model/encoder=bilstm",
    "model.encoder.num_layers=1",
    "model.emb_size=256",
    "model.hidden_size=256",
    "model/attention=luong_general",
    "model.decoder.input_feed=true",
    "model.encoder.dropout=0.2",
    "model.decoder.dropout=0.2",
    "model.init=uniform",
]


def plain_linear_cross_entropy(x, weight, bias, y, label_smoothing=0.0):
    """The unfused form nmt/loss.py replaces, for before/after runs."""
    logits = torch.nn.functional.linear(x, weight, bias)  # (N, V)
    return torch.nn.functional.cross_entropy(
        logits, y, reduction="sum", label_smoothing=label_smoothing
    )


def protocol_data(cache: Path):
    corpus = load_bible(src="4", tgt="l", extra_refs=[], dev_books=[8, 57], test_books=[41])
    tokenizer = Tokenizer.train(corpus, TokenizerConfig(vocab_size=8000), cache)
    src, tgt = tokenizer.encode_src(corpus.train.src), tokenizer.encode_tgt(corpus.train.tgt)
    keep = [i for i in range(len(src)) if len(src[i]) - 1 <= 50 and len(tgt[i]) - 2 <= 50]
    return corpus, tokenizer, [src[i] for i in keep], [tgt[i] for i in keep]


def matmul_peak(threads: int) -> dict:
    """Median float32 torch.mm rate on a large square shape and on the model's 64-row shape."""

    def rate(m: int, k: int, n: int, repeats: int) -> float:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            torch.mm(a, b)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - start)
        return 2 * m * k * n / statistics.median(times) / 1e9

    return {
        "threads": threads,
        "large_gflops": rate(2048, 2048, 2048, 10),
        "rows64_gflops": rate(64, 512, 8000, 50),
    }


def flops(model_cfg, vocab: int, n_src: int, n_tgt: int, src_tgt_pairs: int) -> float:
    """Matrix-product FLOPs of one training pass (2 per multiply-add, forward + 2x backward)
    over `n_src` source and `n_tgt` target tokens, `src_tgt_pairs` = sum over sentences of S*T
    (attention scores and contexts)."""
    E, H = model_cfg.emb_size, model_cfg.hidden_size
    D, K = 2 * H, 2 * H  # decoder size (encoder output) and key size
    encoder = 2 * 4 * H * (E + H)  # two directions, four gates
    keys = K * D  # general: W_a h_s once per source token
    decoder = 4 * D * (E + D + D) + D * (K + D) + vocab * D  # LSTM (input feeding), W_c, W_s
    attention = D + K  # scores and context per (source, target) pair
    macs = n_src * (encoder + keys) + n_tgt * decoder + src_tgt_pairs * attention
    return 2 * 3 * macs


def train_benchmark(args, model, tokenizer, src, tgt) -> dict:
    trainer = TrainerConfig(batch_size=args.batch, batch_tokens=args.batch_tokens, bucket_pool=50)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = epoch_batches(
        [len(s) for s in src],
        [len(t) for t in tgt],
        batch_size=args.batch,
        batch_tokens=args.batch_tokens,
        pool=50,
        seed=1,
        epoch=0,
    )
    records = []
    for step in range(args.warmup + args.steps):
        batch = make_batch(src, tgt, batches[step % len(batches)])
        start = time.perf_counter()
        train_step(model, optimizer, batch, trainer, clip_norm=5.0)
        elapsed = time.perf_counter() - start
        if step >= args.warmup:
            n_src, n_tgt = int(batch.src_mask.sum()), batch.n_tokens
            pairs = int((batch.src_mask.sum(-1) * batch.tgt_mask.sum(-1)).sum())
            records.append(
                {
                    "dt": elapsed,
                    "src": n_src,
                    "tgt": n_tgt,
                    "pairs": pairs,
                    "padded_tgt": batch.tgt_mask.numel(),
                }
            )
    tgt_rate = statistics.median(r["tgt"] / r["dt"] for r in records)
    total = {k: sum(r[k] for r in records) for k in ("dt", "src", "tgt", "pairs", "padded_tgt")}
    return {
        "steps": args.steps,
        "median_tgt_tok_s": tgt_rate,
        "median_srctgt_tok_s": statistics.median((r["src"] + r["tgt"]) / r["dt"] for r in records),
        "tgt_pad_fraction": 1 - total["tgt"] / total["padded_tgt"],
        "mean_src_tgt_pairs_per_tgt": total["pairs"] / total["tgt"],
        "src_per_tgt": total["src"] / total["tgt"],
        "train_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def decode_benchmark(model, tokenizer, lines: list[str], beam: int) -> dict:
    cfg = DecodeConfig(
        beam_size=beam,
        length_penalty="gnmt" if beam > 1 else "none",
        alpha=1.0,
        max_len_ratio=0.0,
        max_len_extra=100,
        batch_size=64,
    )
    src = tokenizer.encode_src(lines)
    model.eval()
    start = time.perf_counter()
    for index in sorted_batches([len(s) for s in src], cfg.batch_size):
        batch = make_batch(src, None, index)
        decode(model, batch.src, batch.src_mask, cfg)
    return {
        "beam": beam,
        "sentences": len(lines),
        "sent_per_s": len(lines) / (time.perf_counter() - start),
    }


def run_peers(folder: Path, minutes: int) -> None:
    """The peers' own scripts, one after the other (they print their own summary table)."""
    env = os.environ | {"MINUTES": str(minutes)}
    for script in ("setup_venvs.sh", "run_all.sh"):
        subprocess.run(["bash", str(folder / script)], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decode-sentences", type=int, default=None, help="first N of Mark")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--peers", type=Path, default=None)
    parser.add_argument("--minutes", type=int, default=20, help="peers' training budget")
    parser.add_argument(
        "--plain-loss",
        action="store_true",
        help="output layer + cross-entropy through plain autograd instead of nmt/loss.py",
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc's malloc settings as they are (see nmt/allocator.py)",
    )
    args = parser.parse_args()
    if not args.system_malloc:
        keep_freed_memory()
    if args.plain_loss:
        nmt.model.linear_cross_entropy = plain_linear_cross_entropy
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    corpus, tokenizer, src, tgt = protocol_data(default_cache_dir())
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=PROTOCOL)
    model = build_model(
        cfg.model, src_vocab_size=tokenizer.src_vocab_size, tgt_vocab_size=tokenizer.tgt_vocab_size
    )
    report = {
        "params": count_parameters(model),
        "train_pairs": len(src),
        "matmul": matmul_peak(args.threads),
    }
    report["train"] = train_benchmark(args, model, tokenizer, src, tgt)
    t = report["train"]
    per_tgt = (
        flops(
            cfg.model,
            tokenizer.tgt_vocab_size,
            round(t["src_per_tgt"] * 1e6),
            10**6,
            round(t["mean_src_tgt_pairs_per_tgt"] * 1e6),
        )
        / 1e6
    )
    report["flops_per_tgt_token"] = per_tgt
    report["train_gflops"] = per_tgt * t["median_tgt_tok_s"] / 1e9
    report["fraction_of_matmul_peak"] = report["train_gflops"] / report["matmul"]["large_gflops"]
    lines = corpus.test.src[: args.decode_sentences]
    report["greedy"] = decode_benchmark(model, tokenizer, lines, 1)
    report["beam5"] = decode_benchmark(model, tokenizer, lines, 5)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.peers:
        run_peers(args.peers, args.minutes)


if __name__ == "__main__":
    sys.exit(main())
