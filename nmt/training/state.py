"""What the training loop keeps and judges: its resumable state (`TrainState`, saved in every
checkpoint), the data it trains and validates on, a validation's scores and whether they
improved, and what every checkpoint holds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from nmt.config import DecodeConfig, TrainerConfig
from nmt.data.spm import Tokenizer
from nmt.decoding.translate import translate_texts
from nmt.evaluation.metrics import bleu
from nmt.evaluation.scoring import mean_loss
from nmt.models.seq2seq import Seq2Seq


@dataclasses.dataclass
class TrainState:
    """The loop's resumable position and judgement, saved in every checkpoint."""

    step: int = 0
    epoch: int = 0  # 0-based epoch in progress
    batch_in_epoch: int = 0  # batches of this epoch already trained on
    best_score: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    train_time_s: float = 0.0
    train_tokens: int = 0
    stopped_early: bool = False
    nonfinite_steps: int = 0  # updates skipped for a non-finite loss or gradient norm
    nonfinite_in_a_row: int = 0
    lr_scale: float = 1.0  # what the plateau halvings have left of the schedule's rate
    since_halving: int = 0  # validations without a better score since the last halving
    stop_reason: str | None = None  # one of STOP_REASONS once the run has stopped


# Why a run stopped: patience validations without a better dev score; the plateau halvings
# took the rate under optim.lr_floor; or the budget ran out (the cap of the protocol).
STOP_REASONS = ("plateau", "rate_floor", "max_epochs", "max_steps")


@dataclasses.dataclass
class Data:
    """Token ids of the training and dev splits, and the dev text for BLEU."""

    train_src: list
    train_tgt: list
    dev_src: list
    dev_tgt: list
    dev_text: list[str]
    dev_refs: list[str]


def validate(
    model: Seq2Seq,
    tokenizer: Tokenizer,
    data: Data,
    cfg: TrainerConfig,
    decode: DecodeConfig,
    device: torch.device,
) -> dict[str, float | None]:
    """Dev loss and perplexity, and dev BLEU with the run's search where `valid_bleu` asks."""
    dev_loss = mean_loss(
        model, data.dev_src, data.dev_tgt, device, decode.batch_size, decode.max_src_len
    )
    scores: dict[str, float | None] = {
        "dev_loss": dev_loss,
        "dev_ppl": math.exp(min(dev_loss, 50.0)),
        "dev_bleu": None,
    }
    if cfg.valid_bleu:
        text, _ = translate_texts(model, tokenizer, data.dev_text, decode, device)
        scores["dev_bleu"] = bleu(text, [data.dev_refs])[0]
    return scores


def checkpoint_payload(
    config: dict, tokenizer: Tokenizer, model: Seq2Seq, state: TrainState
) -> dict[str, Any]:
    """What every checkpoint holds: enough to rebuild the model and tokenizer alone."""
    return {
        "config": config,
        "tokenizer": tokenizer.state(),
        "model": model.state_dict(),
        "step": state.step,
        "train_state": dataclasses.asdict(state),
    }


def improved(cfg: TrainerConfig, scores: dict, best: float | None) -> tuple[bool, float]:
    """Whether the validation's early-stopping metric beats the best, and its value."""
    value = scores[cfg.early_stop_metric]
    if cfg.early_stop_metric == "dev_loss":
        return best is None or value < best, value
    return best is None or value > best, value
