"""`nmt-reproduce paper=NAME [scale=cpu] [seeds=N] [out=DIR]`: run a paper's rows, then report.

The jobs and how they run are nmt.papers.jobs; each finished job leaves a record beside the
report (nmt.papers.records), from which a later call on another checkout restores it; the report
is nmt.papers.report."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nmt.cli.common import cli, entry_point
from nmt.config import CONFIG_DIR, strings, whole
from nmt.errors import NmtError
from nmt.papers.jobs import Job, auto_parallel, plan, run_all
from nmt.papers.records import borrow, keep, restore
from nmt.papers.report import write_paper_report
from nmt.papers.spec import paper_spec
from nmt.training.rundir import exclusive
from nmt.training.signals import stop_requests
from nmt.trust import allowed_modules


@entry_point
@hydra.main(config_path=CONFIG_DIR, config_name="reproduce", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise NmtError(f"out={out}: is a file, not a directory")
    paper, scale = paper_spec(cfg.paper), HydraConfig.get().runtime.choices["scale"]
    seeds = whole(cfg, "seeds", 1)
    parallel = auto_parallel() if cfg.jobs == "auto" else whole(cfg, "jobs", 1)
    samples = whole(cfg, "bootstrap_samples", 1)
    extra = strings(cfg, "train_overrides")
    allow = allowed_modules(strings(cfg, "allow_targets"))
    lenders = [Path(d) for d in strings(cfg, "borrow")]
    jobs = plan(paper, scale, seeds, out, extra, allow)
    records = Path(cfg.records)
    out.mkdir(parents=True, exist_ok=True)
    restored = [job.name for job in jobs if restore(job, out, records, allow)]
    if restored:
        print(f"restored from the records in {records}: {', '.join(restored)}", flush=True)
    for job in jobs:
        if lent := borrow(job, out, lenders, allow):
            print(f"{job.name}: the same run as {lent}, copied from there", flush=True)

    def keep_record(job: Job) -> None:
        keep(job, out, records, paper.report.heatmaps)

    again = "(the same command again goes on from each job's last checkpoint)"
    with stop_requests(again):
        if not cfg.report_only:  # only writing the report: runs may go on meanwhile
            with exclusive(out, "out="):
                run_all(jobs, out, keep_record, parallel=parallel)
        for job in jobs:  # those that finished while this call only wrote the report
            if job.status() == "done":
                keep_record(job)
        report, claims = write_paper_report(
            paper,
            scale,
            jobs,
            out,
            Path(cfg.report_dir),
            extra,
            n_samples=samples,
        )
    print(f"report: {report}")
    print(claims)


if __name__ == "__main__":
    main()
