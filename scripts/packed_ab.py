#!/usr/bin/env python3
"""Paired comparison of the protocol model's training forward and backward (scripts/benchmark.py)
with the teacher-forced steps' products on oneDNN-packed weights (nmt.fast.step_sum, the default on
CPU) and on torch's own (`nmt.fast.packed.enabled(False)`). Each batch of the first epoch runs the
loss and its backward once on each path, from the same dropout seed and without an update, the
order alternating batch by batch; prints each path's median target tokens/s, the median
per-batch ratio and how far apart the two paths' losses and gradients are.

    python scripts/packed_ab.py --batches 24
    python scripts/packed_ab.py --precision bfloat16
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import (  # noqa: E402
    first_epoch_args,
    first_epoch_setup,
    protocol_model,
    protocol_model_config,
)

from nmt.data.batching import make_batch  # noqa: E402
from nmt.devices import autocast  # noqa: E402
from nmt.fast import packed

PATHS = ("torch", "packed")


def main() -> None:
    args = first_epoch_args(__doc__, batches=24)
    tokenizer, src, tgt, batches = first_epoch_setup()
    model = protocol_model(protocol_model_config(), tokenizer).train()

    def run(path: str, batch, seed: int) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(seed)  # the same dropout masks on both paths
        start = time.perf_counter()
        with packed.enabled(path == "packed"), autocast(args.precision, batch.src.device):
            loss = model.loss(batch, 0.0)
            (loss / batch.n_tokens).backward()
        seconds = time.perf_counter() - start
        return seconds, [loss.detach(), *(p.grad for p in model.parameters())]

    rates: dict[str, list[float]] = {p: [] for p in PATHS}
    ratios, largest = [], 0.0
    for i in range(args.warmup + args.batches):
        batch = make_batch(src, tgt, batches[i])
        results = {path: run(path, batch, i) for path in (PATHS if i % 2 == 0 else PATHS[::-1])}
        if i >= args.warmup:
            for path in PATHS:
                rates[path].append(batch.n_tokens / results[path][0])
            ratios.append(results["torch"][0] / results["packed"][0])
        pairs = zip(results["torch"][1], results["packed"][1], strict=True)
        largest = max(largest, *(float((a - b).abs().max() / a.abs().max()) for a, b in pairs))
    for path in PATHS:
        print(f"{path}: median {statistics.median(rates[path]):,.0f} target tok/s")
    print(
        f"{args.precision}, packed / torch speed of forward and backward, median per-batch ratio "
        f"over {args.batches} batches: {statistics.median(ratios):.3f}; largest difference of the "
        f"loss or a gradient, relative to its largest value: {largest:.1e}"
    )


if __name__ == "__main__":
    sys.exit(main())
