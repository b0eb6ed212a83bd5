"""What a reproduction records of each sitting of a job, so that a report says on what it ran:
OUT/jobs.jsonl holds a line per sitting (row, seed, wall-clock, exit status, the CPU the rest
of the machine used meanwhile, the commit and the CPU kernels), and `job_times` sums them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from nmt import files as jsonfile

JOBS_LOG = "jobs.jsonl"  # a line per sitting of a job: row, seed, wall_s, exit, other_cpu_s


def cpu_capability() -> str:
    """The CPU kernels torch uses here ('AVX512', 'AVX2', ...): timings, and the last digits of
    a score, differ between machines that have different ones."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


CODE_PATHS = ("nmt", "configs", "scripts", "pyproject.toml")  # what a run's results depend on


def code_version(checkout: Path = Path(__file__).parent) -> str:
    """The commit of the code that runs (`git describe`), '-dirty' if the package, configs,
    scripts or pyproject.toml differ from it. Results written into the checkout (a report
    directory under docs/, say) do not count: a reproduction rewrites them as it goes."""
    git = ["git", "-C", str(checkout)]
    try:
        commit = _git_output(git + ["describe", "--always"])
        top = _git_output(git + ["rev-parse", "--show-toplevel"])
        changed = _git_output(["git", "-C", top, "status", "--porcelain", "--", *CODE_PATHS])
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if changed else "")


def _git_output(command: list[str]) -> str:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def job_times(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (row, seed), summed over its sittings: `wall_s`, the wall-clock seconds it ran,
    `other_cpu_s`, the CPU seconds the rest of the machine used meanwhile (None if unknown),
    `commits` and `cpus`, the code versions and CPU kernels of its sittings."""
    path = out / JOBS_LOG
    totals: dict[tuple[str, int], dict[str, Any]] = {}
    if path.is_file():
        for r in jsonfile.read_jsonl(path):
            total = totals.setdefault(
                (r["row"], r["seed"]),
                {"wall_s": 0.0, "other_cpu_s": 0.0, "commits": [], "cpus": []},
            )
            total["wall_s"] += r["wall_s"]
            total["commits"] += [r["commit"]] if r.get("commit") else []
            total["cpus"] += [r["cpu"]] if r.get("cpu") and r["cpu"] not in total["cpus"] else []
            if r.get("other_cpu_s") is None or total["other_cpu_s"] is None:
                total["other_cpu_s"] = None  # a sitting that did not measure it
            else:
                total["other_cpu_s"] += r["other_cpu_s"]
    return totals
