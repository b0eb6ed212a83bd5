#!/usr/bin/env python3
"""How close to the matmul peak could training on the benchmark protocol get at all? Times every
matrix product of a protocol training step at the shapes `nmt` gives it (forward and backward,
in the precision that training runs it: under bfloat16, attention and the keys' projection stay
float32), with nothing else, for real protocol batches; then divides the model's FLOPs (counted
as scripts/benchmark.py counts them, real tokens only) by that time and by a 2048^3 `torch.mm`
peak sampled between the batches. The result bounds the fraction scripts/benchmark.py can
report: the rest of a step (pointwise ops, softmax, autograd, Adam) only adds time.

    python scripts/matmul_bound.py --precision bfloat16 --batches 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import (  # noqa: E402
    first_epoch_batches,
    flops,
    product_sampler,
    protocol_data,
    protocol_model_config,
)

from nmt.config import default_cache_dir  # noqa: E402
from nmt.data.batching import make_batch  # noqa: E402
from nmt.fast import loss, step_sum
from nmt.models.encoder import INPUT_ROWS  # noqa: E402

# (group, batch count g, m, k, n, dtype): g products of (m, k) x (k, n); g > 1 is a bmm
Product = tuple[str, int, int, int, int, torch.dtype]


def step_products(
    E: int, H: int, V: int, B: int, S: int, T: int, n_tgt: int, low: torch.dtype
) -> list[tuple[Product, int]]:
    """(product, times per step) for one batch: encoder 1-layer bidirectional LSTM of H per
    direction, decoder LSTM of D = 2H with input feeding, general attention, W_c, W_s.

    The encoder's input product has the S * B rows of `lstm_steps`, padded in bfloat16; its
    steps are counted at B rows. The decoder's weight gradients are one product over all T * B
    step rows (nmt.fast.step_sum)."""
    f32 = torch.float32
    D = 2 * H
    rows = S * B + -(S * B) % INPUT_ROWS if low != f32 else S * B
    steps = T * B + -(T * B) % step_sum.ROWS if low != f32 else T * B  # summed weight gradients
    out = [
        (("encoder input", 1, rows, E, 8 * H, low), 1),  # both directions at once
        (("encoder input", 1, rows, 8 * H, E, low), 1),
        (("encoder input", 2, 4 * H, rows, E, low), 1),
        (("encoder steps", 2, B, H, 4 * H, low), S),
        (("encoder steps", 2, B, 4 * H, H, low), S),
        (("encoder steps", 2, 4 * H, B, H, low), S),
        (("keys", 1, B * S, D, D, f32), 2),  # forward, input gradient
        (("keys", 1, D, B * S, D, f32), 1),
        (("decoder LSTM", 1, B, E + D, 4 * D, low), T),
        (("decoder LSTM", 1, B, D, 4 * D, low), T),
        (("decoder LSTM", 1, B, 4 * D, E + D, low), T),
        (("decoder LSTM", 1, B, 4 * D, D, low), T),
        (("decoder LSTM", 1, 4 * D, steps, E + D, low), 1),  # weight gradients (nmt.fast.step_sum)
        (("decoder LSTM", 1, 4 * D, steps, D, low), 1),
        (("W_c", 1, B, 2 * D, D, low), T),
        (("W_c", 1, B, D, 2 * D, low), T),
        (("W_c", 1, D, steps, 2 * D, low), 1),
        (("attention", B, 1, D, S, f32), 2 * T),  # scores; gradient of the context weights
        (("attention", B, 1, S, D, f32), 2 * T),  # context; gradient of the query
        (("attention", B, S, T, D, f32), 2),  # keys' and memory's gradients (nmt.fast.step_sum)
    ]
    for start in range(0, n_tgt, loss.CHUNK):
        m = min(loss.CHUNK, n_tgt - start)
        m += -m % loss.ROWS if low != f32 else 0
        out += [
            (("output layer", 1, m, D, V, low), 1),
            (("output layer", 1, m, V, D, low), 1),
            (("output layer", 1, V, m, D, low), 1),
        ]
    return out


def seconds(product: Product, repeats: int) -> float:
    """Median seconds of one product."""
    _, g, m, k, n, dtype = product
    a, b = torch.randn(g, m, k, dtype=dtype), torch.randn(g, k, n, dtype=dtype)
    run = (lambda: torch.bmm(a, b)) if g > 1 else (lambda: torch.mm(a[0], b[0]))
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="bfloat16")
    parser.add_argument("--batches", type=int, default=8, help="protocol batches to time")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each product")
    args = parser.parse_args()
    torch.set_num_threads(2)
    low = torch.bfloat16 if args.precision == "bfloat16" else torch.float32
    _, tokenizer, src, tgt = protocol_data(default_cache_dir())
    cfg = protocol_model_config()
    batches = first_epoch_batches(src, tgt)
    peak = product_sampler(2048, 2048, 2048, onednn=False, dtype=low)
    by_group: dict[str, float] = defaultdict(float)
    fractions, peaks, total_flops, total_seconds = [], [], 0.0, 0.0
    for indices in batches[: args.batches]:
        batch = make_batch(src, tgt, indices)
        B, S = batch.src.shape
        T = batch.tgt_in.size(1)
        n_src, n_tgt = int(batch.src_mask.sum()), batch.n_tokens
        pairs = int((batch.src_mask.sum(1) * batch.tgt_mask.sum(1)).sum())
        shapes = step_products(
            cfg.emb_size, cfg.hidden_size, tokenizer.tgt_vocab_size, B, S, T, n_tgt, low
        )
        spent = 0.0
        for product, times in shapes:
            t = seconds(product, args.repeats) * times
            by_group[product[0]] += t
            spent += t
        work = flops(cfg, tokenizer.tgt_vocab_size, n_src, n_tgt, pairs)
        peaks.append(statistics.median(peak() for _ in range(3)))
        fractions.append(work / spent / 1e9 / peaks[-1])
        total_flops, total_seconds = total_flops + work, total_seconds + spent
        print(
            f"batch {B}x{S} -> {T}: products {spent * 1e3:.0f} ms, "
            f"{work / spent / 1e9:.0f} GFLOP/s, {fractions[-1]:.0%} of {peaks[-1]:.0f}"
        )
    print(f"\n{args.precision} products by group (ms over {args.batches} batches):")
    for group, t in by_group.items():
        print(f"  {group:15s} {t * 1e3:8.1f} ({t / total_seconds:.0%})")
    print(
        f"products alone: {total_flops / total_seconds / 1e9:.0f} GFLOP/s, median "
        f"{statistics.median(fractions):.0%} of the {args.precision} torch.mm peak "
        f"(median {statistics.median(peaks):.0f} GFLOP/s)"
    )


if __name__ == "__main__":
    main()
