#!/usr/bin/env python3
"""Paired throughput of `nmt-reproduce jobs=1` against `jobs=2`: the same row x seed jobs, whole
(training, validations, test scoring), run through nmt.papers.runner.run_all one at a time with all
cores and then side by side with cores / 2 threads each, in rounds whose order alternates, each
round in fresh directories. Prints each round's wall-clock and jobs per hour, and the median
ratio of jobs=2's throughput over jobs=1's.

A benchmark, not a test: run it on a quiet machine (suspend other training with SIGSTOP).

    python benchmarks/jobs.py --paper luong15_t4 --rows global_dot local_p_general \\
        --steps 200 --rounds 2 --out bench-jobs.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from omegaconf import OmegaConf  # noqa: E402

from nmt.config import CONFIG_DIR  # noqa: E402
from nmt.papers.plan import plan  # noqa: E402
from nmt.papers.provenance import cpu_capability  # noqa: E402
from nmt.papers.runner import run_all  # noqa: E402


def jobs_for(args, out: Path) -> list:
    """The chosen rows' jobs of seed 1..--seeds at scale cpu, with the reduced budget."""
    paper = OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{args.paper}.yaml")
    paper.rows = [row for row in paper.rows if row.id in args.rows]
    missing = set(args.rows) - {row.id for row in paper.rows}
    if missing:
        raise SystemExit(f"paper {args.paper} has no rows {sorted(missing)}")
    extra = [
        f"trainer.max_steps={args.steps}",
        f"trainer.valid_every={args.steps}",
        "trainer.patience=null",
        *args.overrides,
    ]
    return plan(paper, "cpu", args.seeds, out, extra)


def one_side(args, parallel: int) -> float:
    """Wall-clock seconds of running every job with `parallel` side by side, afresh."""
    with tempfile.TemporaryDirectory(prefix=f"jobs{parallel}-", dir=args.tmp) as tmp:
        out = Path(tmp)
        jobs = jobs_for(args, out)
        start = time.perf_counter()
        run_all(jobs, out, parallel=parallel)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", default="luong15_t4")
    parser.add_argument("--rows", nargs="+", default=["global_dot", "local_p_general"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200, help="updates of each job")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of sides, order alternating")
    parser.add_argument("--overrides", nargs="*", default=[], help="more nmt-train overrides")
    parser.add_argument("--tmp", default=None, help="where the jobs' directories go")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    n_jobs = len(args.rows) * args.seeds
    rounds = []
    for i in range(args.rounds):
        sides = (1, 2) if i % 2 == 0 else (2, 1)
        seconds = {parallel: one_side(args, parallel) for parallel in sides}
        rounds.append({f"jobs{p}_s": round(s, 1) for p, s in seconds.items()})
        print(json.dumps(rounds[-1]), flush=True)
    per_hour = {
        p: statistics.median(n_jobs * 3600 / r[f"jobs{p}_s"] for r in rounds) for p in (1, 2)
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_capability(),
        "cores": os.cpu_count(),
        "paper": args.paper,
        "rows": args.rows,
        "seeds": args.seeds,
        "steps": args.steps,
        "rounds": rounds,
        "jobs_per_hour": {f"jobs={p}": round(v, 2) for p, v in per_hour.items()},
        "jobs2_over_jobs1": round(
            statistics.median(r["jobs1_s"] / r["jobs2_s"] for r in rounds), 3
        ),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
