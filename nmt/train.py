"""`nmt-train`: train one model (or sweep with -m), then score its best checkpoint on test.

`nmt-train resume=RUN_DIR [trainer.max_steps=N] [trainer.max_epochs=N]` continues the run in
RUN_DIR with the config saved there; only the budget may be extended.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nmt.allocator import keep_freed_memory
from nmt.checkpoint import load_checkpoint
from nmt.config import (
    CONFIG_DIR,
    DecodeConfig,
    TokenizerConfig,
    TrainerConfig,
    at_least,
    cache_dir,
    cli,
    typed,
)
from nmt.data import load_corpus
from nmt.errors import NmtError
from nmt.evaluate import bleu_line, save_heatmaps, score_split, write_results, write_split_files
from nmt.model import Seq2Seq, build_model, count_parameters, resolve_device
from nmt.rundir import check_fresh, discard_failed, exclusive
from nmt.signals import StopRequest, stop_requests
from nmt.tokenizer import build_tokenizer, encode_split
from nmt.trainer import Data, Fit, TrainState, set_rng_state

log = logging.getLogger(__name__)

BUDGET_KEYS = ("trainer.max_steps", "trainer.max_epochs")


def resumed_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The config saved in `run_dir`, with any budget overrides applied (nothing else allowed)."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise NmtError(f"resume={run_dir}: no saved config at {saved}")
    cfg = OmegaConf.load(saved)
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if key == "resume":
            continue
        if key not in BUDGET_KEYS:
            raise NmtError(
                f"resume: '{key}' cannot change when resuming (only {', '.join(BUDGET_KEYS)})"
            )
        OmegaConf.update(cfg, key, None if value == "null" else int(value))
    cfg.resume = str(run_dir)
    return cfg


def build_optimizer(cfg: DictConfig, model: Seq2Seq) -> torch.optim.Optimizer:
    try:
        return instantiate(cfg.optimizer, params=model.parameters(), _convert_="all")
    except InstantiationException as err:
        raise NmtError(f"optim.optimizer: {err.__cause__ or err}") from None


def prepare_data(cfg: DictConfig, tokenizer_cfg: TokenizerConfig):
    corpus = load_corpus(cfg.data)
    cache = cache_dir(cfg)
    tokenizer = build_tokenizer(corpus, tokenizer_cfg, cache)
    train_src, train_tgt = encode_split(tokenizer, corpus.train, cache)
    dev_src, dev_tgt = encode_split(tokenizer, corpus.dev, cache)
    data = Data(train_src, train_tgt, dev_src, dev_tgt, corpus.dev.src, corpus.dev.tgt)
    return corpus, tokenizer, data


def restore(
    cfg: DictConfig, run_dir: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer
) -> TrainState:
    """Load model, optimizer, RNG and loop position from RUN_DIR/checkpoints/last.pt, and drop
    metrics logged after it (they will be logged again)."""
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    set_rng_state(saved["rng"])
    state = TrainState(**saved["train_state"])
    budget = [key.split(".")[1] for key in BUDGET_KEYS]
    if any(saved["config"]["trainer"][key] != cfg.trainer[key] for key in budget):
        state.stopped_early = False  # a larger budget gets another chance
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        kept = [
            line
            for line in metrics.read_text().splitlines()
            if json.loads(line)["step"] <= state.step
        ]
        metrics.write_text("".join(line + "\n" for line in kept))
    log.info("resuming %s at step %d (epoch %d)", run_dir, state.step, state.epoch + 1)
    return state


def run(cfg: DictConfig, run_dir: Path) -> dict:
    resume_hint = f"continue with: nmt-train resume={run_dir}"
    first = "before its first checkpoint (nothing to resume)"
    with stop_requests(f"before training; {resume_hint}" if cfg.resume else first) as stop:
        return train_and_score(cfg, run_dir, stop, resume_hint)


def check_values(cfg: DictConfig) -> None:
    """Every value a run reads, checked before any work: the typed groups' types and ranges,
    and the sizes the builder and the corpus take."""
    typed(TrainerConfig, cfg.trainer, "trainer")
    typed(DecodeConfig, cfg.decode, "decode")
    typed(TokenizerConfig, cfg.tokenizer, "tokenizer")
    for key in ("model.emb_size", "model.hidden_size", "model.decoder_size", "data.max_len"):
        value = OmegaConf.select(cfg, key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise NmtError(f"{key}: {value!r} is not an integer")
        at_least(key, value, 1)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise NmtError(f"seed: {cfg.seed!r} is not an integer")


def train_and_score(cfg: DictConfig, run_dir: Path, stop: StopRequest, resume_hint: str) -> dict:
    """Train (or go on training), then score the best checkpoint on test into results.json."""
    check_values(cfg)
    keep_freed_memory()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = resolve_device(cfg.device)
    decode = typed(DecodeConfig, cfg.decode, "decode")
    corpus, tokenizer, data = prepare_data(cfg, typed(TokenizerConfig, cfg.tokenizer, "tokenizer"))
    model = build_model(
        cfg.model, src_vocab_size=tokenizer.src_vocab_size, tgt_vocab_size=tokenizer.tgt_vocab_size
    ).to(device)
    optimizer = build_optimizer(cfg.optim, model)
    log.info(
        "model: %s encoder, %s decoder, %s; %d parameters; device %s",
        type(model.encoder).__name__,
        type(model.decoder).__name__,
        type(model.decoder.attention).__name__,
        count_parameters(model),
        device,
    )
    state = restore(cfg, run_dir, model, optimizer) if cfg.resume else TrainState()
    fit = Fit(cfg, run_dir, model, optimizer, tokenizer, data, device, state, stop)
    fit.run()
    stop.where = f"while scoring the test set; {resume_hint}"

    best = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    hyps, scores = score_split(model, tokenizer, corpus.test, decode, device, cache_dir(cfg))
    write_split_files(run_dir, "test", corpus.test, hyps)
    save_heatmaps(run_dir / "attention", model, tokenizer, corpus.test, decode, device)
    results = scores | {
        "params": count_parameters(model),
        "train_time_s": state.train_time_s,
        "train_tokens_per_s": state.train_tokens / max(state.train_time_s, 1e-9),
        "best_step": state.best_step,
        "steps": state.step,
        "nonfinite_steps": state.nonfinite_steps,
        "decode": OmegaConf.to_container(cfg.decode),
    }
    write_results(run_dir / "results.json", results)
    return results


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
@cli
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    log_name = f"{hydra_cfg.job.name}.log"
    if cfg.resume:
        try:
            cfg = resumed_config(Path(cfg.resume), list(hydra_cfg.overrides.task))
        except NmtError:
            discard_failed(run_dir, log_name)  # e.g. a mistyped resume= directory
            raise
    else:
        check_fresh(run_dir)
    with exclusive(run_dir, "run directory "):
        try:
            results = run(cfg, run_dir)
        except Exception:
            if not cfg.resume:
                discard_failed(run_dir, log_name)
            raise
    print(f"test BLEU {bleu_line(results)}")
    print(f"run directory: {run_dir}")
    return results["bleu"]


if __name__ == "__main__":
    main()
