#!/usr/bin/env python3
"""Paired speed comparisons on the peer protocol's model and data (benchmarks/speed.py), each
pair measured alternately in one run so that the machine's drift hits both alike; prints each
side's median and the median of the per-round ratios.

    --compare fast        the reference model against the fast layer (nmt.fast.accelerate):
                          training steps batch by batch, then greedy decoding batch by batch
    --compare precision   trainer.precision float32 against bfloat16, with the fast layer
    --compare versions    this checkout against another (--before DIR), each built by its
                          own speed module in a process of its own, taking turns batch by
                          batch: training steps, then greedy and beam-5 decoding with the
                          same weights

A benchmark, not a test: compare figures within one run.

    python benchmarks/compare.py --compare fast --batches 20
    python benchmarks/compare.py --compare versions --before /tmp/old --batches 40
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def protocol():
    """The protocol's model (fast layer off), tokenizer and first-epoch batches."""
    sys.path.insert(0, str(HERE.parent))
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


def alternate(sides: dict, measure, rounds: int, skip: int = 0) -> dict:
    """measure(side, i) for each side in turn, the order swapped every round; the first `skip`
    rounds are warm-up, not counted."""
    names = list(sides)
    times = {name: [] for name in names}
    for i in range(skip + rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            seconds = measure(sides[name], i)
            if i >= skip:
                times[name].append(seconds)
    a, b = names
    ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return {
        **{f"{name}_median_s": statistics.median(t) for name, t in times.items()},
        f"{a}_over_{b}": statistics.median(ratios),
    }


def compare_fast(args) -> dict:
    torch, reference, batches = protocol()
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
    torch, model, batches = protocol()
    from nmt.fast import accelerate

    models = {"float32": accelerate(model), "bfloat16": accelerate(copy.deepcopy(model))}
    optimizers = {
        name: torch.optim.Adam(m.parameters(), lr=1e-3, fused=True) for name, m in models.items()
    }
    train = batches[args.warmup : args.warmup + args.batches]

    def train_step(name: str, i: int) -> float:
        return step_seconds(torch, models[name], optimizers[name], train[i], name)

    return {"train": alternate({n: n for n in models}, train_step, len(train))}


SPEEDS = ("benchmarks/speed.py", "scripts/benchmark.py")  # where a checkout keeps it


def serve(tree: Path, model_name: str) -> None:
    """One side of --compare versions: the protocol model of the checkout at `tree`, built by
    that checkout's own speed module (fast layer on), answering each command on stdin with the
    seconds it took: `train I` (one update on first-epoch batch I), `greedy I` and `beam I`
    (batch I's sources), `save PATH` and `load PATH` (the weights)."""
    script = next((tree / name for name in SPEEDS if (tree / name).exists()), None)
    if script is None:
        raise SystemExit(f"{tree}: no speed benchmark ({' or '.join(SPEEDS)})")
    sys.path[:0] = [str(tree), str(script.parent)]
    speed = importlib.import_module(script.stem)
    import torch

    try:
        from nmt.decoding.search import beam_search, greedy
    except ImportError:  # a checkout before nmt/decoding/
        from nmt.search import beam_search, greedy

    tokenizer, src, tgt, batches = speed.first_epoch_setup()
    if model_name == "main":  # train.yaml's own model, on the protocol's data
        with speed.initialize_config_dir(config_dir=speed.CONFIG_DIR, version_base="1.3"):
            model_cfg = speed.compose("train").model
    else:
        model_cfg = speed.protocol_model_config()
    model = speed.protocol_model(model_cfg, tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    if hasattr(speed, "defaults"):
        trainer = speed.defaults(speed.TrainerConfig)
    else:  # a checkout whose config classes hold the defaults
        trainer = speed.TrainerConfig()
    limits = {"max_len_ratio": 1.5, "max_len_extra": 5}
    print("ready", flush=True)
    for line in sys.stdin:
        command, value = line.split()
        start = time.perf_counter()
        if command == "train":
            batch = speed.make_batch(src, tgt, batches[int(value)])
            speed.train_step(model, optimizer, batch, trainer, 5.0)
        elif command in ("greedy", "beam"):
            model.eval()
            batch = speed.make_batch(src, tgt, batches[int(value)])
            with torch.no_grad():
                if command == "greedy":
                    greedy(model, batch.src, batch.src_mask, **limits)
                else:
                    beam_search(model, batch.src, batch.src_mask, beam_size=5, **limits)
        elif command == "save":
            torch.save(model.state_dict(), value)
        elif command == "load":
            model.load_state_dict(torch.load(value, weights_only=True))
        print(time.perf_counter() - start, flush=True)


def compare_versions(args) -> dict:
    """This checkout ("after") and --before, each a process of its own, take turns batch by
    batch, the order swapped every batch: --batches training updates after --warmup, then
    greedy and beam-5 decoding of --decode-batches batches with the same weights on both sides
    (this checkout's after those updates). `*_over_*` is a median ratio of seconds: under 1,
    after is faster."""
    trees = {"after": HERE.parent, "before": Path(args.before).resolve()}
    sides = {}
    for name, tree in trees.items():
        env = {**os.environ, "PYTHONPATH": str(tree)}  # this tree's nmt, not the installed one
        sides[name] = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(tree), "--model", args.model],
            cwd=tree,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        if sides[name].stdout.readline().strip() != "ready":
            raise SystemExit(f"{tree}: its side did not start")

    def ask(side: subprocess.Popen, command: str) -> float:
        time.sleep(0.05)  # the other side's OpenMP threads stop spinning
        side.stdin.write(command + "\n")
        side.stdin.flush()
        return float(side.stdout.readline())

    def step(kind: str):
        return lambda side, i: ask(side, f"{kind} {i}")

    report = {"train": alternate(sides, step("train"), args.batches, skip=args.warmup)}
    with tempfile.TemporaryDirectory() as tmp:
        weights = f"{tmp}/weights.pt"
        ask(sides["after"], f"save {weights}")
        for side in sides.values():
            ask(side, f"load {weights}")
        for kind in ("greedy", "beam"):
            report[kind] = alternate(sides, step(kind), args.decode_batches, skip=1)
    for side in sides.values():
        side.stdin.close()
        side.wait()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", choices=["fast", "precision", "versions"])
    parser.add_argument("--before", help="--compare versions: the other nmt checkout")
    parser.add_argument("--batches", type=int, default=20, help="measured batches")
    parser.add_argument("--warmup", type=int, default=4, help="batches before measuring")
    parser.add_argument(
        "--decode-batches", type=int, default=8, help="--compare versions: decoded batches"
    )
    parser.add_argument(
        "--model",
        choices=["protocol", "main"],
        default="protocol",
        help="--compare versions: the protocol's model or train.yaml's (the main job's)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # one side of --compare versions
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), args.model)
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
