"""This process among others: its rank when a launcher started several (torchrun, torch's
elastic launcher, submitit), and a child's tie to the command that started it."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the ranks of one run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this rank validates, logs and writes the run's files."""
        return self.rank == 0


def world_from_env(export: bool = False) -> World:
    """The ranks torchrun (or torch's elastic launcher) set, else submitit's in a job of several
    tasks (`tasks_per_node` x nodes), else one process. With `export`, a submitit job also gets
    the environment of env:// initialisation (MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK:
    the rendezvous at the job's first host, from submitit's own helper)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if "SUBMITIT_EXECUTOR" in env:
        import submitit

        job = submitit.JobEnvironment()
        if job.num_tasks > 1:
            if export:
                submitit.helpers.TorchDistributedEnvironment().export()
            return World(job.global_rank, job.num_tasks, job.local_rank)
    return World()


def die_with_parent() -> None:
    """In a child process: ask Linux to SIGKILL it when the process that started it dies, so no
    orphan keeps writing a run. Elsewhere a no-op (the launcher's own monitoring remains)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
