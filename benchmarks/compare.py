#!/usr/bin/env python3
"""Paired speed comparisons on the peer protocol's model and data (benchmarks/speed.py), each
pair measured alternately in one run so that the machine's drift hits both alike; prints each
side's median and the median of the per-round ratios.

    --compare fast        the reference model against the fast layer (nmt.fast.accelerate):
                          training steps batch by batch, then greedy decoding batch by batch
    --compare precision   trainer.precision float32 against bfloat16, with the fast layer
    --compare versions    this checkout against another (--before DIR), each round a fresh
                          process per side running `--measure` on the same batches

A benchmark, not a test: compare figures within one run.

    python benchmarks/compare.py --compare fast --batches 20
    python benchmarks/compare.py --compare versions --before /tmp/old --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def protocol(root: Path):
    """The protocol's model (fast layer off), tokenizer and first-epoch batches, from the nmt
    checkout at `root` (an older checkout has no fast layer to switch off)."""
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(HERE))
    import torch
    from speed import first_epoch_setup, protocol_model, protocol_model_config

    from nmt.data.batching import make_batch

    tokenizer, src, tgt, batches = first_epoch_setup()
    model = protocol_model(protocol_model_config(), tokenizer, fast=False)
    return torch, model, [make_batch(src, tgt, b) for b in batches]


def step_seconds(torch, model, optimizer, batch, precision: str) -> float:
    from nmt.devices import autocast

    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    with autocast(precision, batch.src.device):
        loss = model.loss(batch)
    (loss / batch.n_tokens).backward()
    optimizer.step()
    return time.perf_counter() - start


def greedy_seconds(model, batch) -> float:
    from nmt.decoding.search import greedy

    start = time.perf_counter()
    greedy(model, batch.src, batch.src_mask, max_len_ratio=1.5, max_len_extra=5)
    return time.perf_counter() - start


def alternate(sides: dict, measure, rounds: int) -> dict:
    """measure(side, i) for each side in turn, the order swapped every round."""
    names = list(sides)
    times = {name: [] for name in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            times[name].append(measure(sides[name], i))
    a, b = names
    ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return {
        **{f"{name}_median_s": statistics.median(t) for name, t in times.items()},
        f"{a}_over_{b}": statistics.median(ratios),
    }


def compare_fast(args) -> dict:
    torch, reference, batches = protocol(HERE.parent)
    from nmt.fast import accelerate

    fast = accelerate(copy.deepcopy(reference))
    models = {"reference": reference, "fast": fast}
    optimizers = {
        name: torch.optim.Adam(m.parameters(), lr=1e-3, fused=True) for name, m in models.items()
    }
    train = batches[args.warmup : args.warmup + args.batches]

    def train_step(name: str, i: int) -> float:
        models[name].train()
        return step_seconds(torch, models[name], optimizers[name], train[i], "float32")

    report = {"train": alternate({n: n for n in models}, train_step, len(train))}

    def decode(name: str, i: int) -> float:
        models[name].eval()
        return greedy_seconds(models[name], train[i])

    report["greedy"] = alternate({n: n for n in models}, decode, len(train))
    return report


def compare_precision(args) -> dict:
    torch, model, batches = protocol(HERE.parent)
    from nmt.fast import accelerate

    models = {"float32": accelerate(model), "bfloat16": accelerate(copy.deepcopy(model))}
    optimizers = {
        name: torch.optim.Adam(m.parameters(), lr=1e-3, fused=True) for name, m in models.items()
    }
    train = batches[args.warmup : args.warmup + args.batches]

    def train_step(name: str, i: int) -> float:
        return step_seconds(torch, models[name], optimizers[name], train[i], name)

    return {"train": alternate({n: n for n in models}, train_step, len(train))}


def measure(args) -> None:
    """One side of --compare versions: the median training-step and greedy seconds of this
    process's checkout, as JSON on stdout."""
    torch, model, batches = protocol(Path(args.measure))
    try:
        from nmt.fast import accelerate

        accelerate(model)
    except ImportError:  # a checkout before the fast layer was separate: always fast
        pass
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    train = batches[: args.warmup + args.batches]
    model.train()
    steps = [step_seconds(torch, model, optimizer, b, "float32") for b in train][args.warmup :]
    model.eval()
    greedy = [greedy_seconds(model, b) for b in train][args.warmup :]
    print(json.dumps({"train_s": statistics.median(steps), "greedy_s": statistics.median(greedy)}))


def compare_versions(args) -> dict:
    trees = {"after": HERE.parent, "before": Path(args.before).resolve()}

    def run(tree: Path) -> dict:
        command = [sys.executable, __file__, "--measure", str(tree)]
        command += ["--batches", str(args.batches), "--warmup", str(args.warmup)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    results = {name: [] for name in trees}
    for i in range(args.rounds):
        for name in list(trees) if i % 2 == 0 else list(trees)[::-1]:
            results[name].append(run(trees[name]))
    report = {}
    for key in ("train_s", "greedy_s"):
        after = [r[key] for r in results["after"]]
        before = [r[key] for r in results["before"]]
        report[key] = {
            "after_median": statistics.median(after),
            "before_median": statistics.median(before),
            "after_over_before": statistics.median(
                a / b for a, b in zip(after, before, strict=True)
            ),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", choices=["fast", "precision", "versions"])
    parser.add_argument("--before", help="--compare versions: the other nmt checkout")
    parser.add_argument("--rounds", type=int, default=5, help="--compare versions: rounds")
    parser.add_argument("--batches", type=int, default=20, help="measured batches")
    parser.add_argument("--warmup", type=int, default=4, help="batches before measuring")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one side of --compare versions
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return
    if args.compare is None:
        parser.error("--compare is required")
    if args.compare == "versions" and not args.before:
        parser.error("--compare versions needs --before DIR")
    compare = {"fast": compare_fast, "precision": compare_precision}
    compare["versions"] = compare_versions
    print(json.dumps(compare[args.compare](args), indent=2))


if __name__ == "__main__":
    main()
