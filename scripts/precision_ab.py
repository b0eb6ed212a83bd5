#!/usr/bin/env python3
"""Paired training-speed comparison of trainer.precision=float32 and bfloat16 on the benchmark
protocol (scripts/benchmark.py): one model, each batch of the first epoch trained once in each
precision, the order alternating batch by batch, so that machine drift hits both alike. Prints
each precision's median target tokens/s and the median per-batch ratio.

    python scripts/precision_ab.py --batches 16
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

from nmt.config import TrainerConfig, defaults  # noqa: E402
from nmt.data.batching import make_batch  # noqa: E402
from nmt.training.trainer import train_step  # noqa: E402

PRECISIONS = ("float32", "bfloat16")


def main() -> None:
    args = first_epoch_args(__doc__, batches=16, precision=False)
    tokenizer, src, tgt, batches = first_epoch_setup()
    model = protocol_model(protocol_model_config(), tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as optim=adam
    configs = {p: defaults(TrainerConfig, batch_size=64, precision=p) for p in PRECISIONS}
    rates: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    ratios = []
    for i in range(args.warmup + args.batches):
        batch = make_batch(src, tgt, batches[i])
        seconds = {}
        for p in PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]:
            start = time.perf_counter()
            train_step(model, optimizer, batch, configs[p], clip_norm=5.0)
            seconds[p] = time.perf_counter() - start
        if i >= args.warmup:
            ratios.append(seconds["float32"] / seconds["bfloat16"])
            for p in PRECISIONS:
                rates[p].append(batch.n_tokens / seconds[p])
    for p in PRECISIONS:
        print(f"{p}: median {statistics.median(rates[p]):,.0f} target tok/s")
    print(
        f"bfloat16 / float32 speed, median per-batch ratio over {args.batches} batches: "
        f"{statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
