"""A paper's reproduction end to end, the one function `nmt-reproduce` calls: plan its jobs,
restore or borrow those finished elsewhere, run the others, keep each finished job's record and
write the report.

A paper is a file under configs/paper/ (its rows, published numbers, per-scale overrides and the
claims to check); this package only runs what it declares. Every row x seed is one `nmt-train`
job in its own subdirectory OUT/ROW/seedS (nmt.papers.plan), run as a child process
(nmt.papers.runner). Run again, it skips the jobs that have results.json, resumes those that
have a checkpoint, and starts the others, so a reproduction can span several sittings and
`seeds=5` later adds seeds 4 and 5 only. Each finished job leaves a record beside the report
(nmt.papers.records), from which a later call on another checkout restores it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from nmt.errors import NmtError
from nmt.papers.plan import Job, plan
from nmt.papers.records import borrow, keep, restore
from nmt.papers.report import write_paper_report
from nmt.papers.runner import run_all
from nmt.papers.spec import paper_spec
from nmt.training.rundir import exclusive
from nmt.training.signals import stop_requests


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """What to reproduce and where: `paper` the composed paper node, `scale` one of its scales,
    `seeds` per row (a row may ask for more), `out` the jobs' folder, `records` where finished
    jobs are kept, `report_dir` the report's folder, `extra` overrides for every job, `allow`
    plug-in modules a saved config may build, `lenders` other reproductions' records to borrow
    from, `parallel` jobs side by side, `samples` bootstrap samples."""

    paper: DictConfig
    scale: str
    seeds: int
    out: Path
    records: Path
    report_dir: Path
    extra: Sequence[str] = ()
    allow: Sequence[str] = ()
    lenders: Sequence[Path] = ()
    parallel: int = 1
    samples: int = 1000


def reproduce(r: Reproduction, report_only: bool = False) -> tuple[Path, str]:
    """Run what is left of the reproduction (nothing with `report_only`: the report from the
    jobs finished so far) and write its report; the report's path and the claims table."""
    if r.out.exists() and not r.out.is_dir():
        raise NmtError(f"out={r.out}: is a file, not a directory")
    paper = paper_spec(r.paper)
    jobs = plan(paper, r.scale, r.seeds, r.out, list(r.extra), r.allow)
    r.out.mkdir(parents=True, exist_ok=True)
    restored = [job.name for job in jobs if restore(job, r.out, r.records, r.allow)]
    if restored:
        print(f"restored from the records in {r.records}: {', '.join(restored)}", flush=True)
    for job in jobs:
        if lent := borrow(job, r.out, list(r.lenders), r.allow):
            print(f"{job.name}: the same run as {lent}, copied from there", flush=True)

    def keep_record(job: Job) -> None:
        keep(job, r.out, r.records, paper.report.heatmaps)

    again = "(the same command again goes on from each job's last checkpoint)"
    with stop_requests(again):
        if not report_only:  # only writing the report: runs may go on meanwhile
            with exclusive(r.out, "out="):
                run_all(jobs, r.out, keep_record, parallel=r.parallel)
        for job in jobs:  # those that finished while this call only wrote the report
            if job.status() == "done":
                keep_record(job)
        return write_paper_report(
            paper, r.scale, jobs, r.out, r.report_dir, list(r.extra), n_samples=r.samples
        )
