"""The resolvers the YAML files use to place a run: its directory (`nmt_run_dir`, a fresh one
per launch: `nmt_fresh_dir`), where Hydra saves its config (`nmt_output_subdir`) and its log
file (`nmt_log_file`, one per rank)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from omegaconf import OmegaConf

from nmt.errors import NmtError
from nmt.processes import world_from_env


def launched_rank() -> int:
    """This process's rank when a launcher started it as one of several, else 0."""
    return world_from_env().rank


def _output_subdir(resume: str | None, output_dir: str) -> str | None:
    """Where Hydra saves the launch's config: `.hydra` of a new run directory; nowhere when
    resuming (the saved config is the run's), when the directory holds another run's, or on a
    rank other than 0 (rank 0 saves it for all). Resolved once per launch (registered with
    OmegaConf's cache), so the command reads the same answer from `hydra.output_subdir` after
    Hydra has written its config: on rank 0 of a fresh launch, null means the directory held
    another run (nmt.training.rundir.check_fresh)."""
    if resume is not None or launched_rank() > 0:
        return None
    if (Path(output_dir) / ".hydra" / "config.yaml").is_file():
        return None
    return ".hydra"


def _run_dir(resume: str | None, default: str) -> str:
    """`resume=RUN_DIR` continues in RUN_DIR. Under torchrun every rank (of every node) must
    find the same directory, which `${now:}` cannot promise (hydra#2070): the default is then
    outputs/runs/torchrun-RDZV_ID, the rendezvous id that all ranks share."""
    if resume is not None:
        return resume
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        return f"outputs/runs/torchrun-{run_id}"
    return _fresh_dir(default)


@functools.cache
def _fresh_dir(default: str) -> str:
    """`default` (a directory named by the time, to the second), or `default-2`, `-3`, ... when
    another command made it first: the directory is claimed by creating it, so that two
    commands started in the same second get one each."""
    path = Path(default)
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return str(candidate)
    raise NmtError(f"{default}: 10,000 directories of that name exist already")


def _log_file(output_dir: str, job_name: str) -> str:
    """RUN_DIR/train.log, or train.rankR.log for rank R > 0 of a distributed run."""
    rank = launched_rank()
    return f"{output_dir}/{job_name}{f'.rank{rank}' if rank else ''}.log"


def register_resolvers() -> None:
    """Make the resolvers known to OmegaConf (once; the config module calls it on import)."""
    resolvers = {
        "nmt_run_dir": _run_dir,
        "nmt_fresh_dir": _fresh_dir,
        "nmt_output_subdir": _output_subdir,
        "nmt_log_file": _log_file,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            # the run-placing answers must not change once Hydra has acted on them
            OmegaConf.register_new_resolver(name, resolver, use_cache=name == "nmt_output_subdir")
