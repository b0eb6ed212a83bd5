"""Running a reproduction's jobs: each an `nmt-train` child process (a `Sitting`), `parallel` of
them side by side, each validation printed as it lands and each sitting recorded in
OUT/jobs.jsonl (nmt.papers.provenance). Run again, the jobs that have results.json are skipped
and those that have a checkpoint resume, so a reproduction spans several sittings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nmt import files as jsonfile
from nmt.errors import NmtError
from nmt.files import inside
from nmt.papers.plan import Job, check_same_job
from nmt.papers.provenance import JOBS_LOG, code_version, cpu_capability, job_times
from nmt.processes import die_with_parent


def command(job: Job) -> list[str]:
    """The child's command line: resume from the checkpoint, or a fresh run in the directory."""
    train = [sys.executable, "-m", "nmt.train"]
    if job.status() == "resume":
        allow = [f"allow_targets=[{','.join(job.allow_targets)}]"] if job.allow_targets else []
        return [*train, f"resume={job.directory}", *allow]
    return [*train, *job.overrides, f"hydra.run.dir={job.directory}"]


def _new_lines(path: Path, seen: int) -> tuple[list[dict], int]:
    """The metrics.jsonl records after the first `seen` lines, and the new line count; a last
    line still being written waits for the next call."""
    if not path.is_file():
        return [], seen
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]
    if len(lines) < seen:  # a resumed run drops the records after its checkpoint
        seen = 0
    return [json.loads(line) for line in lines[seen:]], len(lines)


def busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat; None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds of process `pid` and its waited-for children (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime .. cstime


class JobClock:
    """A job's wall-clock less the time it was suspended (SIGSTOP, Ctrl-Z: the poll comes
    back late), and the CPU time the rest of the machine used while it ran (/proc, Linux)."""

    SUSPENDED = 30.0  # a poll this late means the job was stopped meanwhile

    def __init__(self, pid: int) -> None:
        self.pid, self.active_s, self.other_cpu_s = pid, 0.0, 0.0
        self.last, self.busy, self.own = time.monotonic(), busy_cpu_s(), process_cpu_s(pid)

    def tick(self) -> None:
        now, busy, own = time.monotonic(), busy_cpu_s(), process_cpu_s(self.pid)
        if now - self.last < self.SUSPENDED:
            self.active_s += now - self.last
            if None not in (busy, own, self.busy, self.own):
                self.other_cpu_s += max(0.0, (busy - self.busy) - (own - self.own))
        self.last, self.busy, self.own = now, busy, own


class Sitting:
    """One sitting of a job: its `nmt-train` child writing to `log_file`, each validation
    printed with `tag` as it lands, and, once it ends or is stopped, a line in OUT/jobs.jsonl.
    `threads`, when given, is the child's OMP_NUM_THREADS (torch's thread count when
    trainer.num_threads is null), so that jobs side by side share the cores."""

    def __init__(self, job: Job, out: Path, log_file: Path, tag: str, threads: int | None = None):
        self.job, self.out, self.tag, self.log_file = job, out, tag, log_file
        self.metrics = job.directory / "metrics.jsonl"
        self.seen = _new_lines(self.metrics, 0)[1]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
        with open(log_file, "a", encoding="utf-8") as log_stream:
            log_stream.write(f"\n$ {' '.join(command(job))}\n")
            log_stream.flush()
            self.child = subprocess.Popen(
                command(job),
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent,
            )
        self.clock, self.code = JobClock(self.child.pid), None

    def poll(self, timeout: float = 0.0) -> int | None:
        """Wait up to `timeout` s for the child; print its new validations; its exit status
        once it has ended (the sitting then recorded), else None."""
        try:
            code = self.child.wait(timeout=timeout) if timeout else self.child.poll()
        except subprocess.TimeoutExpired:
            code = None
        self.clock.tick()
        records, self.seen = _new_lines(self.metrics, self.seen)
        for r in records:
            bleu = "" if r.get("dev_bleu") is None else f", dev BLEU {r['dev_bleu']:.2f}"
            print(f"{self.tag}   step {r['step']}: dev ppl {r['dev_ppl']:.2f}{bleu}", flush=True)
        if code is not None:
            self.code = code
            self.record()
        return code

    def stop(self) -> None:
        """Interrupted: SIGTERM makes the child save its step; the sitting is recorded."""
        if self.child.poll() is None:
            self.child.terminate()
            self.child.wait()
            self.clock.tick()
            self.record()

    def record(self) -> None:
        job = self.job
        line = {"row": job.row, "seed": job.seed, "wall_s": self.clock.active_s, "exit": self.code}
        line |= {"commit": code_version(), "cpu": cpu_capability()}
        jsonfile.append_jsonl(self.out / JOBS_LOG, line | {"other_cpu_s": self.clock.other_cpu_s})


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def time_left(jobs: list[Job], out: Path, parallel: int = 1) -> str:
    """About how long the unfinished jobs take: each at its row's mean wall-clock so far, or,
    before its row has finished once, at the finished jobs' mean time per update times its
    budget (their mean wall-clock without one), over `parallel` side by side. A resumed job
    counts whole: an upper bound."""
    walls = {key: t["wall_s"] for key, t in job_times(out).items()}
    done = {
        (j.row, j.seed): walls[(j.row, j.seed)]
        for j in jobs
        if j.status() == "done" and (j.row, j.seed) in walls
    }
    if not done:
        return "time left unknown"
    overall = sum(done.values()) / len(done)
    budgets = {(j.row, j.seed): j.max_steps for j in jobs}
    per_step = [s / budgets[key] for key, s in done.items() if budgets.get(key)]
    total = 0.0
    for job in jobs:
        if job.status() != "done":
            same = [s for (row, _), s in done.items() if row == job.row]
            if same:
                total += sum(same) / len(same)
            elif per_step and job.max_steps:
                total += sum(per_step) / len(per_step) * job.max_steps
            else:
                total += overall
    return f"about {_duration(total / parallel)} left"


def auto_parallel() -> int:
    """`jobs=auto`: two jobs side by side on a machine of two or more cores without a GPU, one
    where a GPU trains. On a 2-core AVX2 CPU two jobs of one thread each finish more jobs an hour
    than one job of two threads (docs/performance.md, "Jobs side by side"): small matrix
    products and the pointwise work between them use a second thread poorly."""
    import torch

    if torch.cuda.is_available() or (os.cpu_count() or 1) < 2:
        return 1
    return 2


def run_all(
    jobs: list[Job],
    out: Path,
    on_done: Callable[[Job], None] = lambda job: None,
    parallel: int = 1,
) -> None:
    """Run every unfinished job, `parallel` at a time in plan order, with a line as each
    starts, validates and ends; `on_done(job)` after each job that finishes, and for each
    finished earlier. Side by side, each job's torch gets cores / parallel threads. A job that
    fails stops the others (each saves its step) and raises."""
    if parallel < 1:
        raise NmtError(f"jobs: must be at least 1, got {parallel}")
    threads = max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None
    start = time.monotonic()
    waiting: list[tuple[str, Job]] = []
    for n, job in enumerate(jobs, start=1):
        tag = f"[{n}/{len(jobs)}]"
        check_same_job(job)
        if job.status() == "done":
            bleu = json.loads((job.directory / "results.json").read_text())["bleu"]
            print(f"{tag} {job.name}: finished earlier (test BLEU {bleu:.2f})", flush=True)
            on_done(job)
        else:
            waiting.append((tag, job))
    running: list[Sitting] = []
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                tag, job = waiting.pop(0)
                if job.status() == "partial":  # killed before its first checkpoint
                    shutil.rmtree(inside(job.directory, out, f"row {job.row}"))
                verb = (
                    "resuming from its last checkpoint" if job.status() == "resume" else "starting"
                )
                log_file = out / "logs" / f"{job.row}-seed{job.seed}.log"
                print(f"{tag} {job.name}: {verb} (log: {log_file})", flush=True)
                running.append(Sitting(job, out, log_file, tag, threads))
            time.sleep(5 if parallel > 1 else 0)
            for sitting in list(running):
                code = sitting.poll(timeout=0 if parallel > 1 else 5)
                if code is None:
                    continue
                running.remove(sitting)
                job = sitting.job
                if code != 0:
                    raise NmtError(
                        f"{job.name} failed (exit {code}); its output is in {sitting.log_file}"
                    )
                bleu = json.loads((job.directory / "results.json").read_text())["bleu"]
                print(
                    f"{sitting.tag} {job.name}: done in {_duration(sitting.clock.active_s)}, "
                    f"test BLEU {bleu:.2f}; elapsed {_duration(time.monotonic() - start)}, "
                    f"{time_left(jobs, out, parallel)}",
                    flush=True,
                )
                on_done(job)
    finally:
        for sitting in running:
            sitting.stop()
