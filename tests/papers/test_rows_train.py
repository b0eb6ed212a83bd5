"""Every paper row at scale=cpu trains: its model, optimiser and trainer settings take a few
updates on a toy batch, and the loss goes down."""

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from toys import V, toy_batch

from nmt.config import CONFIG_DIR, TrainerConfig, typed
from nmt.data.batching import make_batch
from nmt.fast import accelerate
from nmt.models.build import build_model
from nmt.papers.plan import row_overrides
from nmt.training.run import build_optimizer
from nmt.training.step import train_step

PAPERS = sorted(p.stem for p in (Path(CONFIG_DIR) / "paper").glob("*.yaml"))


def cpu_rows():
    for name in PAPERS:
        paper = OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{name}.yaml")
        for row in paper.rows:
            yield pytest.param(paper, row, id=f"{name}-{row.id}")


@pytest.mark.parametrize(("paper", "row"), list(cpu_rows()))
def test_every_cpu_row_takes_a_few_updates(paper, row):
    torch.manual_seed(0)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*row_overrides(paper, row, "cpu", []), "seed=1"])
    model = build_model(
        cfg.model, src_vocab_size=V, tgt_vocab_size=V, joint_vocab=cfg.tokenizer.joint
    )
    if cfg.fast:
        accelerate(model)
    optimizer = build_optimizer(cfg.optim.optimizer, model)
    trainer = typed(TrainerConfig, cfg.trainer, "trainer")
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, list(range(len(src))))
    clip = cfg.optim.clip_norm
    losses = [train_step(model, optimizer, batch, trainer, clip)[0] for _ in range(4)]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0], losses
