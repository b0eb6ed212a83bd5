"""`nmt-evaluate checkpoint=PATH [split=test] [data=...]`: score a checkpoint on a corpus split.

Everything is rebuilt from the checkpoint; the scores and files go to the command's own run
directory (one per command, even for two started in the same second, held by its lock), never
into the training run: a `hydra.run.dir=` that holds a run is refused before anything is
written there."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nmt.cli.common import cli, entry_point, require
from nmt.config import CONFIG_DIR, DecodeConfig, cache_dir, typed, typed_flag
from nmt.data import load_corpus
from nmt.decoding.translate import load_model
from nmt.devices import resolve_device
from nmt.errors import NmtError
from nmt.evaluation.scoring import (
    bleu_line,
    save_heatmaps,
    score_split,
    write_results,
    write_split_files,
)
from nmt.models.seq2seq import count_parameters
from nmt.training.rundir import exclusive
from nmt.trust import allowed_modules


@entry_point
@hydra.main(config_path=CONFIG_DIR, config_name="evaluate", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    """`nmt-evaluate`: in a run directory of its own, never a training run's."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.output_subdir is None:  # the directory holds a run's saved config
        raise NmtError(
            f"hydra.run.dir={run_dir}: holds a run already; nmt-evaluate writes into a "
            "directory of its own"
        )
    with exclusive(run_dir, "run directory "):
        evaluate(cfg, run_dir)


def evaluate(cfg: DictConfig, run_dir: Path) -> None:
    """Score `checkpoint=` on `split=` of its corpus (or `data=`'s) into `run_dir`."""
    require(cfg, "checkpoint", "checkpoint=PATH")
    device = resolve_device(cfg.device)
    decode = typed(DecodeConfig, cfg.decode, "decode")  # checked before any work
    allow = allowed_modules(cfg.allow_targets)
    model, tokenizer, saved = load_model(cfg.checkpoint, device, typed_flag(cfg, "fast"), allow)
    data_cfg = (
        cfg.data if cfg.get("data") is not None else OmegaConf.create(saved["config"]["data"])
    )
    split = load_corpus(data_cfg).split(cfg.split)
    hyps, scores, before_unk = score_split(
        model, tokenizer, split, decode, device, cache_dir(cfg.paths.cache_dir)
    )
    write_split_files(run_dir, cfg.split, split, hyps, before_unk)
    save_heatmaps(run_dir / "attention", model, tokenizer, split, decode, device)
    results = scores | {
        "checkpoint": str(Path(cfg.checkpoint).resolve()),
        "split": cfg.split,
        "step": saved["step"],
        "params": count_parameters(model),
        "decode": OmegaConf.to_container(cfg.decode),
    }
    write_results(run_dir / "results.json", results)
    print(f"{cfg.split} BLEU {bleu_line(scores)}")
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    main()
