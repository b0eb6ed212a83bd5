"""`nmt-train trainer.devices=N`: N ranks of one run on this machine, started by torch's elastic
launcher (what torchrun runs) rather than by a launcher of our own.

The command keeps the run directory (its lock, its config) and waits; each rank runs
`nmt.training.run.run` in that directory with torchrun's environment, and rank 0's results come
back. A rank dies with the command (PR_SET_PDEATHSIG), so a killed command leaves no rank
training on; `resume=` goes on from the last checkpoint as for one process.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nmt.config import train_job
from nmt.errors import NmtError, RunInterruptedError
from nmt.processes import die_with_parent, world_from_env

log = logging.getLogger(__name__)


def launch(cfg: DictConfig, run_dir: Path, devices: int) -> dict:
    """Train the run `cfg` describes in `run_dir` on `devices` local ranks; rank 0's results."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=devices,
        run_id=run_dir.name,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # a free port, as torchrun --standalone takes
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    log.info("training on %d ranks (torch's elastic launcher)", devices)
    container = OmegaConf.to_container(cfg, resolve=True)  # no Hydra in the ranks
    try:
        results = elastic_launch(config, rank_main)(container, str(run_dir))
    except SignalException as err:
        raise RunInterruptedError(
            f"interrupted by {signal.Signals(err.sigval).name}: the ranks were asked to save "
            f"their step; continue with: nmt-train resume={run_dir}",
            err.sigval,
        ) from None
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        raise NmtError(
            f"trainer.devices={devices}: rank {rank} failed (exit {failure.exitcode}; its "
            f"error is above); continue with: nmt-train resume={run_dir}"
        ) from None
    return results[0]


def rank_main(cfg: dict, run_dir: str) -> dict:
    """One rank's work (in a process of its own): the run, with its error as one line."""
    die_with_parent()
    rank_logging(Path(run_dir))
    try:
        return run_rank(cfg, Path(run_dir))
    except NmtError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


def run_rank(cfg: dict, run_dir: Path) -> dict:
    """The run of one rank, from its config as a plain dict."""
    from nmt.training.run import run

    return run(train_job(OmegaConf.create(cfg)), run_dir)


def rank_logging(run_dir: Path) -> None:
    """What the command logs, for a rank: to stderr and to the run's train.log (rank 0) or
    train.rankR.log."""
    rank = world_from_env().rank
    name = "train.log" if rank == 0 else f"train.rank{rank}.log"
    fmt = logging.Formatter(f"[%(asctime)s] rank {rank}: %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stderr), logging.FileHandler(run_dir / name)]
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
