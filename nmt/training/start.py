"""How a run starts: afresh, resumed (`resume=RUN_DIR`, optionally resetting the optimizer or
the early-stopping state), or from another run's weights (`init_from=CKPT`, fine-tuning).

A resumed run takes the config saved in its directory; only the budget and `reset` may be
given. A fine-tuning run takes its model and tokenizer from the checkpoint and everything else
(data, optimizer, trainer, decoding) from its own command line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nmt.checkpoint import checked_config, load_checkpoint
from nmt.errors import NmtError
from nmt.files import write_text
from nmt.trust import load_yaml

log = logging.getLogger(__name__)

BUDGET_KEYS = ("trainer.max_steps", "trainer.max_epochs")
FROM_CHECKPOINT = ("model", "tokenizer", "experiment")  # groups init_from takes from the ckpt


def override_key(item: str) -> str:
    """'trainer.max_steps' of the command-line override '+trainer.max_steps=10'."""
    return item.lstrip("+~").partition("=")[0]


def resumed_config(
    run_dir: Path, overrides: list[str], reset: Any, allow: Sequence[str] = ()
) -> DictConfig:
    """The config saved in `run_dir`, with any budget overrides and this launch's `reset` and
    `allow_targets` (nothing else allowed). The saved config is a file, so it builds only
    nmt's own classes and those under `allow` (nmt.trust), checked before anything."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise NmtError(f"resume={run_dir}: no saved config at {saved}")
    cfg = load_yaml(saved, allow)
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if key in ("resume", "reset", "allow_targets"):
            continue
        if key not in BUDGET_KEYS:
            raise NmtError(
                f"resume: '{key}' cannot change when resuming (only {', '.join(BUDGET_KEYS)} "
                "and reset)"
            )
        OmegaConf.update(cfg, key, _budget(key, value))
    cfg.resume, cfg.reset = str(run_dir), reset or []  # a name or a list, as given
    cfg.allow_targets = list(allow)
    return cfg


def _budget(key: str, value: str) -> int | None:
    """A budget override's value: a whole number of at least 1, or null."""
    if value == "null":
        return None
    if not value.isdigit() or int(value) < 1:
        raise NmtError(f"resume: {key} must be a whole number of at least 1 or null, not {value!r}")
    return int(value)


def fine_tune_config(
    cfg: DictConfig, overrides: list[str], allow: Sequence[str] = ()
) -> DictConfig:
    """`cfg` with the model and tokenizer of checkpoint `cfg.init_from`; `model.KEY=VALUE`
    overrides (a dropout, say) go on top and must keep the weights' shapes, which loading them
    checks. Choosing another model, attention, tokenizer or experiment is an error. The
    checkpoint's config builds only nmt's own classes and those under `allow` (nmt.trust)."""
    if cfg.resume:
        raise NmtError("init_from: a resumed run goes on from its own weights; give resume= alone")
    saved = checked_config(load_checkpoint(cfg.init_from), cfg.init_from, allow)
    for item in overrides:
        key = override_key(item)
        if key.split("/")[0] in FROM_CHECKPOINT or key.startswith("tokenizer."):
            raise NmtError(
                f"init_from: '{key}' cannot be chosen; the model and tokenizer come from "
                f"{cfg.init_from} (only model.KEY=VALUE changes that keep the weights' shapes)"
            )
    model = OmegaConf.create(saved["model"])
    for key in {override_key(i) for i in overrides if override_key(i).startswith("model.")}:
        OmegaConf.update(model, key[len("model.") :], OmegaConf.select(cfg, key), merge=False)
    cfg = cfg.copy()
    cfg.model, cfg.tokenizer = model, OmegaConf.create(saved["tokenizer"])
    return cfg


def save_run_config(run_dir: Path, cfg: DictConfig) -> None:
    """Replace the config Hydra saved in `run_dir` by the one the run really trains with (a
    fine-tuning run's model is its checkpoint's), so that `resume=` finds it."""
    write_text(run_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg))
