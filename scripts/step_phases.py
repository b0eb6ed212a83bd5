#!/usr/bin/env python3
"""Where a protocol training step's time goes (scripts/benchmark.py): each batch of the first
epoch is timed phase by phase, as `nmt.training.trainer.train_step` runs it (encoder forward,
decoder
forward, output layer and loss, backward, clipping and Adam), and the medians are printed in
milliseconds per 1,000 target tokens, with the whole step's tokens/s.

    python scripts/step_phases.py --precision float32 --batches 20
"""

from __future__ import annotations

import itertools
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
from nmt.fast.loss import linear_cross_entropy  # noqa: E402

PHASES = ("encoder", "decoder", "loss", "backward", "clip + Adam", "step")


def main() -> None:
    args = first_epoch_args(__doc__, batches=20)
    tokenizer, src, tgt, batches = first_epoch_setup()
    model = protocol_model(protocol_model_config(), tokenizer).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as optim=adam
    W_s = model.generator
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for i in range(args.warmup + args.batches):
        batch = make_batch(src, tgt, batches[i])
        optimizer.zero_grad(set_to_none=True)
        clock = [time.perf_counter()]
        with autocast(args.precision, batch.src.device):  # as train_step and Seq2Seq.loss
            enc = model.encode(batch.src, batch.src_mask)
            clock.append(time.perf_counter())
            features, _ = model.decoder(enc, batch.tgt_in)
            clock.append(time.perf_counter())
            real = batch.tgt_mask
            y = batch.tgt_out[real]
            loss = linear_cross_entropy(features[real], W_s.weight, W_s.bias, y)
            clock.append(time.perf_counter())
        (loss / batch.n_tokens).backward()
        clock.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        clock.append(time.perf_counter())
        if i >= args.warmup:
            spans = [b - a for a, b in itertools.pairwise(clock)] + [clock[-1] - clock[0]]
            for phase, seconds in zip(PHASES, spans, strict=True):
                times[phase].append(seconds * 1e6 / batch.n_tokens)  # ms per 1,000 tokens
    medians = {phase: statistics.median(v) for phase, v in times.items()}
    print(
        f"{args.precision}, ms per 1,000 target tokens (medians over {args.batches} batches): "
        + ", ".join(f"{phase} {ms:.1f}" for phase, ms in medians.items())
        + f"; {1e6 / medians['step']:,.0f} target tok/s"
    )


if __name__ == "__main__":
    sys.exit(main())
