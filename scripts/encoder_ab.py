#!/usr/bin/env python3
"""Paired comparison of the protocol encoder's two training paths (scripts/benchmark.py): the
packed `nn.LSTM` call against `nmt.models.encoder.lstm_steps`, the padded loop that training
takes on
CPU. Each batch of the first epoch runs forward and backward once on each path, the order
alternating batch by batch; prints each path's median milliseconds per batch, the median
per-batch ratio and how far apart the two paths' outputs and gradients are.

    python scripts/encoder_ab.py --batches 40
    python scripts/encoder_ab.py --precision bfloat16     # lstm_steps under autocast
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

PATHS = ("packed", "lstm_steps")


def main() -> None:
    args = first_epoch_args(__doc__, batches=40)
    tokenizer, src, tgt, batches = first_epoch_setup()
    encoder = protocol_model(protocol_model_config(), tokenizer).encoder.eval()  # no dropout

    def run(path: str, batch) -> tuple[float, list[torch.Tensor]]:
        encoder.zero_grad(set_to_none=True)
        encoder.runs_steps = lambda _: path == "lstm_steps"  # this instance only
        start = time.perf_counter()
        with autocast(args.precision, batch.src.device):
            out = encoder(batch.src, batch.src_mask)
        (out.memory.sum() + out.final[0].sum() + out.final[1].sum()).backward()
        seconds = time.perf_counter() - start
        return seconds, [out.memory.detach(), *(p.grad for p in encoder.rnn.parameters())]

    times: dict[str, list[float]] = {p: [] for p in PATHS}
    ratios, largest = [], 0.0
    for i in range(args.warmup + args.batches):
        batch = make_batch(src, tgt, batches[i])
        results = {}
        for path in PATHS if i % 2 == 0 else PATHS[::-1]:
            results[path] = run(path, batch)
        if i >= args.warmup:
            for path in PATHS:
                times[path].append(results[path][0])
            ratios.append(results["packed"][0] / results["lstm_steps"][0])
        pairs = zip(results["packed"][1], results["lstm_steps"][1], strict=True)
        largest = max(largest, *(float((a - b).abs().max() / b.abs().max()) for a, b in pairs))
    for path in PATHS:
        print(f"{path}: median {1e3 * statistics.median(times[path]):.1f} ms a batch")
    print(
        f"lstm_steps / packed speed, median per-batch ratio over {args.batches} batches: "
        f"{statistics.median(ratios):.3f}; largest difference of an output or gradient, relative "
        f"to its largest value: {largest:.1e}"
    )


if __name__ == "__main__":
    sys.exit(main())
