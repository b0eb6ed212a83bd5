"""`nmt-train`: train one model (or sweep with -m), then score its best checkpoint on test.

`nmt-train resume=RUN_DIR [trainer.max_steps=N] [trainer.max_epochs=N] [reset=[optimizer,
early_stopping]]` continues the run in RUN_DIR with the config saved there; only the budget may
be extended. `nmt-train init_from=CKPT [data=...] [optim...]` starts a new run from a
checkpoint's weights, model and tokenizer (nmt.training.start). The value returned to
Hydra (what a sweeper optimises) is the best dev score, never a test score.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nmt.cli.common import cli
from nmt.config import CONFIG_DIR, train_job
from nmt.errors import NmtError
from nmt.evaluation.scoring import bleu_line
from nmt.training.run import run
from nmt.training.rundir import check_fresh, discard_failed, exclusive
from nmt.training.start import fine_tune_config, resumed_config, save_run_config


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
@cli
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    log_name = f"{hydra_cfg.job.name}.log"
    overrides = list(hydra_cfg.overrides.task)
    if not cfg.resume:
        check_fresh(run_dir)
    try:  # a mistyped resume= directory or checkpoint leaves nothing behind
        if cfg.resume:
            cfg = resumed_config(Path(cfg.resume), overrides, cfg.get("reset"))
        elif cfg.get("init_from"):
            cfg = fine_tune_config(cfg, overrides)
            save_run_config(run_dir, cfg)  # what resume= will find: the checkpoint's model
    except NmtError:
        discard_failed(run_dir, log_name)
        raise
    with exclusive(run_dir, "run directory "):
        try:
            results = run(train_job(cfg), run_dir)
        except Exception:
            if not cfg.resume:
                discard_failed(run_dir, log_name)
            raise
    print(f"test BLEU {bleu_line(results)}")
    print(f"run directory: {run_dir}")
    return results["best_dev_score"]


if __name__ == "__main__":
    main()
