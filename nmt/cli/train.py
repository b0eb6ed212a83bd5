"""`nmt-train`: train one model (or sweep with -m), then score its best checkpoint on test.

`nmt-train resume=RUN_DIR [trainer.max_steps=N] [trainer.max_epochs=N] [reset=[optimizer,
early_stopping]]` continues the run in RUN_DIR with the config saved there; only the budget may
be extended. `nmt-train init_from=CKPT [data=...] [optim...]` starts a new run from a
checkpoint's weights, model and tokenizer (nmt.training.start). `trainer.devices=N`, or
`torchrun --nproc-per-node N -m nmt.train ...`, trains on N data-parallel ranks
(nmt.training.distributed). The value returned to
Hydra (what a sweeper optimises) is the best dev score, never a test score.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nmt.cli.common import cli, entry_point
from nmt.config import CONFIG_DIR, train_job
from nmt.errors import NmtError
from nmt.evaluation.scoring import bleu_line
from nmt.processes import World, world_from_env
from nmt.training.launch import launch
from nmt.training.run import run
from nmt.training.rundir import check_fresh, discard_failed, exclusive, holds_run
from nmt.training.start import fine_tune_config, resumed_config, save_run_config
from nmt.trust import allowed_modules


@entry_point
@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
@cli
def main(cfg: DictConfig) -> float | None:
    """`nmt-train`: one run in its run directory; returns its best dev score (what a sweeper
    optimises, never a test score)."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    log_name = f"{hydra_cfg.job.name}.log"
    # as typed: an interpolation in one is resolved in the config, not here
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
    world = world_from_env(export=True)  # under torchrun or submitit, rank 0 keeps the directory
    if not cfg.resume and world.main:
        check_fresh(run_dir, hydra_cfg.output_subdir)
    try:  # a mistyped resume= directory or checkpoint leaves nothing behind
        allow = allowed_modules(cfg.get("allow_targets"))
        if cfg.resume:
            cfg = resumed_config(Path(cfg.resume), overrides, cfg.get("reset"), allow)
        elif cfg.get("init_from"):
            cfg = fine_tune_config(cfg, overrides, allow)
            if world.main:
                save_run_config(run_dir, cfg)  # what resume= finds: the checkpoint's model
    except NmtError:
        if world.main and not holds_run(run_dir if cfg.resume else None):
            discard_failed(run_dir, log_name)  # a mistyped resume= directory, or ours
        raise
    with exclusive(run_dir, "run directory ") if world.main else contextlib.nullcontext():
        try:
            results = train(cfg, run_dir, world)
        except Exception:
            if not cfg.resume and world.main:
                discard_failed(run_dir, log_name)
            raise
    if not world.main:
        return None
    print(f"test BLEU {bleu_line(results)}")
    print(f"run directory: {run_dir}")
    return results["best_dev_score"]


def train(cfg: DictConfig, run_dir: Path, world: World) -> dict:
    """The run in this process, or over trainer.devices ranks that this command starts."""
    job = train_job(cfg)
    if world.size > 1 and job.trainer.devices not in (1, world.size):
        raise NmtError(
            f"trainer.devices={job.trainer.devices}: this process is rank {world.rank} of "
            f"{world.size} that torchrun or submitit started; give trainer.devices=1 or "
            f"{world.size}"
        )
    if job.trainer.devices == 1 or world.size > 1:  # the ranks are these processes
        return run(job, run_dir)
    return launch(cfg, run_dir, job.trainer.devices)


if __name__ == "__main__":
    main()
