#!/usr/bin/env python3
"""Training speed of a paper row's model at scale cpu, at several torch thread counts, paired:
one process, the row's own first-epoch batches, the thread counts taking turns batch by batch
(the order reversed every other round), so that the machine's drift hits each alike. Prints the
median target tokens/s of each count and the median ratio of each to the first. With
--profile, a torch.profiler table of the first count's steps instead.

A benchmark, not a test: run it on a quiet machine.

    python benchmarks/train_speed.py --paper luong15_t4 --row global_dot --threads 1 2
    python benchmarks/train_speed.py --paper bahdanau14 --row rnnsearch50 --threads 1 2
    python benchmarks/train_speed.py --paper luong15_t4 --row global_dot --profile
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from nmt.config import CONFIG_DIR, train_job  # noqa: E402
from nmt.data.batching import epoch_batches, make_batch  # noqa: E402
from nmt.fast import accelerate  # noqa: E402
from nmt.models.build import build_model  # noqa: E402
from nmt.papers.plan import row_overrides  # noqa: E402
from nmt.papers.provenance import cpu_capability  # noqa: E402
from nmt.training.run import build_optimizer, prepare_data  # noqa: E402
from nmt.training.step import train_step  # noqa: E402


def row_setup(paper_name: str, row_id: str, extra: list[str], fast: bool):
    """The row's job at scale cpu (seed 1), its model (fast layer on unless `fast` is false)
    and optimizer, and its first epoch's batches."""
    paper = OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{paper_name}.yaml")
    row = next((r for r in paper.rows if r.id == row_id), None)
    if row is None:
        raise SystemExit(f"paper {paper_name} has no row {row_id}")
    overrides = [*row_overrides(paper, row, "cpu", extra), "seed=1"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        job = train_job(compose("train", overrides=overrides))
    _, tokenizer, data = prepare_data(job)
    torch.manual_seed(1)
    model = build_model(
        job.model,
        src_vocab_size=tokenizer.src_vocab_size,
        tgt_vocab_size=tokenizer.tgt_vocab_size,
        joint_vocab=tokenizer.joint,
    )
    if fast:
        accelerate(model)
    t = job.trainer
    order = epoch_batches(
        [len(s) for s in data.train_src],
        [len(s) for s in data.train_tgt],
        batch_size=t.batch_size,
        batch_tokens=t.batch_tokens,
        pool=t.bucket_pool,
        seed=1,
        epoch=0,
    )
    batches = [make_batch(data.train_src, data.train_tgt, b) for b in order]
    return job, model, build_optimizer(job.optimizer, model), batches


# torch.profiler's operators by what they do, for the share of the step each kind takes
KINDS = {
    "matrix products": (
        "mkldnn::_linear_pointwise",
        "aten::bmm",
        "aten::mm",
        "aten::addmm",
        "aten::addmm_",
        "aten::baddbmm",
    ),
    "tanh and sigmoid": (
        "aten::tanh",
        "aten::sigmoid",
        "aten::tanh_backward",
        "aten::sigmoid_backward",
    ),
    "dropout masks": ("aten::bernoulli_",),
    "other pointwise": ("aten::mul", "aten::add", "aten::add_", "aten::sub", "aten::div_"),
    "copies and fills": ("aten::cat", "aten::copy_", "aten::fill_", "aten::zero_"),
    "softmax": ("aten::_softmax", "aten::_log_softmax", "aten::exp", "aten::log"),
    "Adam": ("aten::_fused_adam_",),
}


def by_kind(averages) -> dict[str, float]:
    """Each kind's share of the profiled self CPU time, in percent; the rest is autograd's and
    small operators' own time."""
    total = sum(e.self_cpu_time_total for e in averages)
    shares = {kind: 0.0 for kind in KINDS} | {"the rest": 0.0}
    for event in averages:
        kind = next((k for k, names in KINDS.items() if event.key in names), "the rest")
        shares[kind] += event.self_cpu_time_total
    return {kind: round(100 * t / total, 1) for kind, t in shares.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", default="luong15_t4")
    parser.add_argument("--row", default="global_dot")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=30, help="timed batches per count")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reference", action="store_true", help="without the fast layer")
    parser.add_argument("--profile", action="store_true", help="profile instead of timing")
    parser.add_argument("--overrides", nargs="*", default=[], help="more nmt-train overrides")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    job, model, optimizer, batches = row_setup(
        args.paper, args.row, args.overrides, not args.reference
    )
    clip = job.schedule.clip_norm

    def step(i: int) -> float:
        """Target tokens/s of one update on batch i."""
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        train_step(model, optimizer, batch, job.trainer, clip)
        return batch.n_tokens / (time.perf_counter() - start)

    torch.set_num_threads(args.threads[0])
    for i in range(args.warmup):
        step(i)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for i in range(args.warmup, args.warmup + args.batches):
                step(i)
        averages = prof.key_averages(group_by_input_shape=True)
        print(averages.table(sort_by="self_cpu_time_total", row_limit=30))
        print(json.dumps(by_kind(prof.key_averages()), indent=1))
        return
    rates: dict[int, list[float]] = {n: [] for n in args.threads}
    for r in range(args.batches):
        i = args.warmup + r  # every count trains on the same batches, in turn
        for n in args.threads if r % 2 == 0 else args.threads[::-1]:
            torch.set_num_threads(n)
            rates[n].append(step(i))
    first = args.threads[0]
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_capability(),
        "paper": args.paper,
        "row": args.row,
        "fast": not args.reference,
        "batches": args.batches,
        "tokens_per_s": {str(n): round(statistics.median(v)) for n, v in rates.items()},
        f"over_{first}_threads": {
            str(n): round(statistics.median(a / b for a, b in zip(v, rates[first], strict=True)), 3)
            for n, v in rates.items()
        },
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
