#!/usr/bin/env python3
"""One process with 2 threads against 2 gloo ranks of 1 thread (DistributedDataParallel), on the
protocol model of benchmarks/speed.py and the same global batches: step k's 64 sentences are
batches 2k and 2k + 1 of the first epoch's 32-sentence batches, one per rank, or both merged in
the one process. The one process runs with the fast layer (nmt's default) and without it (the
reference that DDP runs); rounds alternate the three so that the machine's drift hits all.
Prints target tokens/s (median over steps) per setting and round, and the medians' ratios.

    python benchmarks/ddp.py --steps 60 --warmup 5 --rounds 2 --out ddp.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import protocol_data, protocol_model, protocol_model_config  # noqa: E402

from nmt.config import TrainerConfig, default_cache_dir, defaults  # noqa: E402
from nmt.data.batching import epoch_batches, make_batch  # noqa: E402
from nmt.processes import World, world_from_env  # noqa: E402
from nmt.training import distributed  # noqa: E402
from nmt.training.step import train_step  # noqa: E402


def half_batches() -> tuple[object, list, list, list]:
    _, tokenizer, src, tgt = protocol_data(default_cache_dir())
    lengths = [len(s) for s in src], [len(t) for t in tgt]
    batches = epoch_batches(*lengths, batch_size=32, batch_tokens=None, pool=400, seed=1, epoch=0)
    return tokenizer, src, tgt, batches


def timed_steps(model, src, tgt, batches: list, args, world=None) -> list[tuple[float, float]]:
    """(seconds, global target tokens) of each measured step."""
    world = world or World()
    torch.manual_seed(1)
    train = distributed.wrap(model, world, torch.device("cpu"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    trainer = defaults(TrainerConfig)
    out = []
    for k in range(args.warmup + args.steps):
        pair = batches[2 * k : 2 * k + 2]
        index = pair[world.rank] if world.size > 1 else pair[0] + pair[1]
        batch = make_batch(src, tgt, index)
        start = time.perf_counter()
        tokens, _ = distributed.step_tokens(world, batch.n_tokens, False)
        train_step(train, optimizer, batch, trainer, 5.0, tokens)
        if k >= args.warmup:
            out.append((time.perf_counter() - start, tokens * world.size))
    return out


def rank_main(rank: int, port: int, args, queue) -> None:
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    os.environ |= {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
    torch.set_num_threads(1)
    world = world_from_env(export=True)
    distributed.start(world, torch.device("cpu"))
    tokenizer, src, tgt, batches = half_batches()
    torch.manual_seed(1)
    model = protocol_model(protocol_model_config(), tokenizer, fast=False)
    steps = timed_steps(model, src, tgt, batches, args, world)
    if world.main:
        queue.put(steps)
    distributed.stop()


def two_ranks(args) -> list:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(rank_main, args=(port, args, queue), nprocs=2, join=True)
    return queue.get()


def one_process(args, fast: bool) -> list:
    torch.set_num_threads(2)
    tokenizer, src, tgt, batches = half_batches()
    torch.manual_seed(1)
    model = protocol_model(protocol_model_config(), tokenizer, fast=fast)
    return timed_steps(model, src, tgt, batches, args)


def rate(steps: list) -> float:
    return statistics.median(tokens / dt for dt, tokens in steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = {
        "1 process x 2 threads, fast layer": lambda: one_process(args, fast=True),
        "1 process x 2 threads, reference": lambda: one_process(args, fast=False),
        "2 gloo ranks x 1 thread (DDP)": lambda: two_ranks(args),
    }
    rates: dict[str, list[float]] = {name: [] for name in settings}
    for round_ in range(args.rounds):
        for name, measure in settings.items():
            rates[name].append(rate(measure()))
            print(f"round {round_ + 1}: {name}: {rates[name][-1]:.0f} target tokens/s", flush=True)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    ddp = medians["2 gloo ranks x 1 thread (DDP)"]
    report = {
        "tgt_tok_s": rates,
        "median_tgt_tok_s": medians,
        "ddp_over_fast": ddp / medians["1 process x 2 threads, fast layer"],
        "ddp_over_reference": ddp / medians["1 process x 2 threads, reference"],
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
