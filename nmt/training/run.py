"""One `nmt-train` run: build the data, tokenizer, model and optimizer a `TrainJob` describes,
train (afresh, resumed or from another run's weights: nmt.training.start) in its run directory,
then score the best checkpoint on test.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig

from nmt import files
from nmt.checkpoint import load_checkpoint, load_weights, set_rng_state
from nmt.config import TrainJob, instantiate_or_fail
from nmt.data import Corpus, load_corpus
from nmt.data.spm import Tokenizer
from nmt.data.tokenizer import build_tokenizer, encode_split, load_tokenizer
from nmt.devices import check_precision, grad_scaler, resolve_device
from nmt.errors import NmtError
from nmt.evaluation.scoring import (
    save_heatmaps,
    score_split,
    write_results,
    write_split_files,
)
from nmt.fast import accelerate
from nmt.models.build import build_model
from nmt.models.seq2seq import Seq2Seq, count_parameters
from nmt.processes import World, world_from_env
from nmt.training import distributed
from nmt.training.signals import StopRequest, stop_requests
from nmt.training.start import BUDGET_KEYS
from nmt.training.state import Data, TrainState
from nmt.training.trainer import Fit

log = logging.getLogger(__name__)


def build_optimizer(cfg: DictConfig, model: Seq2Seq) -> torch.optim.Optimizer:
    """The `optim.optimizer` node instantiated over the model's parameters. Parameters that a
    module trains at a share of the rate (its `lr_scales()`: parameter -> share) go into groups
    of their own, one per share, whose `lr_scale` `Fit.set_lr` applies."""
    optimizer = instantiate_or_fail(
        cfg, "optim.optimizer", params=model.parameters(), _convert_="all"
    )
    scaled: dict[float, list[torch.nn.Parameter]] = {}
    for module in model.modules():
        for parameter, share in getattr(module, "lr_scales", dict)().items():
            scaled.setdefault(share, []).append(parameter)
    if scaled:
        moved = {id(p) for group in scaled.values() for p in group}
        main = optimizer.param_groups[0]
        main["params"] = [p for p in main["params"] if id(p) not in moved]
        main["lr_scale"] = 1.0
        for share, parameters in sorted(scaled.items()):
            optimizer.add_param_group(
                {"params": parameters, "lr": main["lr"] * share, "lr_scale": share}
            )
    return optimizer


def prepare_data(
    job: TrainJob, tokenizer: Tokenizer | None = None
) -> tuple[Corpus, Tokenizer, Data]:
    """The corpus, its tokenizer (given, or trained or reused from the cache) and the encoded
    splits."""
    corpus = load_corpus(job.data)
    tokenizer = tokenizer or build_tokenizer(corpus, job.tokenizer, job.cache_dir)
    train_src, train_tgt = within_pieces(
        *encode_split(tokenizer, corpus.train, job.cache_dir), job.data.get("max_pieces")
    )
    dev_src, dev_tgt = encode_split(tokenizer, corpus.dev, job.cache_dir)
    data = Data(train_src, train_tgt, dev_src, dev_tgt, corpus.dev.src, corpus.dev.tgt)
    return corpus, tokenizer, data


def within_pieces(src: Sequence, tgt: Sequence, max_pieces: int | None) -> tuple:
    """The training pairs with at most `max_pieces` ids a side (`data.max_pieces`): a "word" of
    thousands of characters passes `data.max_len` and would take a batch's memory."""
    if max_pieces is None:
        return src, tgt
    keep = [
        i
        for i, (s, t) in enumerate(zip(src, tgt, strict=True))
        if max(len(s), len(t)) <= max_pieces
    ]
    if len(keep) == len(src):
        return src, tgt
    log.info("corpus: %d training pairs dropped by max_pieces=%d", len(src) - len(keep), max_pieces)
    return [src[i] for i in keep], [tgt[i] for i in keep]


def restore(
    job: TrainJob,
    run_dir: Path,
    saved: dict,
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    world: World | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> TrainState:
    """Load model, optimizer, RNG and loop position from `saved` (RUN_DIR/checkpoints/last.pt),
    less what `job.reset` names, and drop metrics logged after it (they will be logged again).

    reset=optimizer keeps the fresh optimizer (its moments and step counts start over; the rate
    is the schedule's at the current epoch); reset=early_stopping starts the patience count
    anew and lifts an early stop (the best score, and so best.pt, stay)."""
    model.load_state_dict(saved["model"])
    if "optimizer" not in job.reset:
        optimizer.load_state_dict(saved["optimizer"])
    world = world or World()
    rngs = saved["rng"] if isinstance(saved["rng"], list) else [saved["rng"]]  # one per rank
    if len(rngs) != world.size:
        raise NmtError(
            f"resume={run_dir}: the run trained on {len(rngs)} rank(s); resume it on as many "
            f"(this launch has {world.size})"
        )
    set_rng_state(rngs[world.rank])
    if scaler is not None and "scaler" in saved:
        scaler.load_state_dict(saved["scaler"])
    state = TrainState(**saved["train_state"])
    budget = [key.split(".")[1] for key in BUDGET_KEYS]
    if any(saved["config"]["trainer"][key] != getattr(job.trainer, key) for key in budget):
        state.stopped_early = False  # a larger budget gets another chance
    if "early_stopping" in job.reset:
        state.bad_validations, state.since_halving, state.stopped_early = 0, 0, False
    if not state.stopped_early:
        state.stop_reason = None  # it goes on, and will stop for a reason of its own
    if job.reset:
        log.info("resuming with a reset of %s", " and ".join(job.reset))
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file() and world.main:
        kept = [r for r in files.read_jsonl(metrics) if r.get("step", 0) <= state.step]
        files.write_text(metrics, "".join(files.dumps(r) + "\n" for r in kept))
    log.info("resuming %s at step %d (epoch %d)", run_dir, state.step, state.epoch + 1)
    return state


def set_threads(job: TrainJob, world: World) -> None:
    """trainer.num_threads, or under several ranks on one machine its cores shared out."""
    if job.trainer.num_threads:
        torch.set_num_threads(job.trainer.num_threads)
    elif world.size > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def run(job: TrainJob, run_dir: Path) -> dict:
    """Train in `run_dir` and score on test, SIGINT and SIGTERM saving the step (see
    nmt.training.signals). Returns what results.json holds."""
    resume_hint = f"continue with: nmt-train resume={run_dir}"
    first = "before its first checkpoint (nothing to resume)"
    with stop_requests(f"before training; {resume_hint}" if job.resume else first) as stop:
        try:
            return train_and_score(job, run_dir, stop, resume_hint)
        finally:
            distributed.stop()


def run_model(job: TrainJob, tokenizer: Tokenizer, device: torch.device, world: World) -> Seq2Seq:
    """The run's model on its device, with the fast CPU layer where it applies (one process on
    a CPU)."""
    model = build_model(
        job.model,
        src_vocab_size=tokenizer.src_vocab_size,
        tgt_vocab_size=tokenizer.tgt_vocab_size,
        joint_vocab=tokenizer.joint,
    ).to(device)
    if job.fast and world.size > 1:
        log.info("the fast CPU layer is off under DistributedDataParallel (%d ranks)", world.size)
    elif job.fast and device.type != "cpu":
        log.info("the fast CPU layer is off on %s (it is for CPUs)", device)
    elif job.fast:
        accelerate(model)
    return model


def train_and_score(job: TrainJob, run_dir: Path, stop: StopRequest, resume_hint: str) -> dict:
    """Train (or go on training), then score the best checkpoint on test into results.json.
    Under several ranks (nmt.training.distributed) only rank 0 scores; the others return {}."""
    world = world_from_env(export=True)
    random.seed(job.seed + world.rank)  # rank 0 draws as one process would; DDP gives its
    torch.manual_seed(job.seed + world.rank)  # weights to the others, dropout differs by rank
    set_threads(job, world)
    device = distributed.start(world, resolve_device(job.device))
    check_precision(job.trainer.precision, device, "trainer.precision")  # before any work
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt") if job.resume else None
    init = load_checkpoint(job.init_from) if job.init_from and not job.resume else None
    # a fine-tuning run keeps its checkpoint's tokenizer, which its own checkpoints then hold
    given = load_tokenizer((saved or init)["tokenizer"]) if job.init_from else None
    with distributed.main_first(world):  # one rank writes the caches, the others read them
        corpus, tokenizer, data = prepare_data(job, given)
    model = run_model(job, tokenizer, device, world)
    if init is not None:
        load_weights(model, init["model"], f"init_from {job.init_from}")
        log.info("starting from the weights of %s (step %d)", job.init_from, init["step"])
    optimizer = build_optimizer(job.optimizer, model)
    log.info(
        "model: %s encoder, %s decoder, %s; %d parameters; device %s",
        type(model.encoder).__name__,
        type(model.decoder).__name__,
        type(model.decoder.attention).__name__,
        count_parameters(model),
        device,
    )
    scaler = grad_scaler(job.trainer.precision, device)
    if saved:
        state = restore(job, run_dir, saved, model, optimizer, world, scaler)
    else:
        state = TrainState()
    del saved, init  # their tensors now live in the model and optimizer
    callbacks = [
        instantiate_or_fail(node, f"callbacks.{name}") for name, node in job.callbacks.items()
    ]
    fit = Fit(
        job,
        run_dir,
        model,
        optimizer,
        tokenizer,
        data,
        device,
        state,
        stop,
        world,
        scaler,
        callbacks,
    )
    fit.run()
    if not world.main:
        return {}
    stop.where = f"while scoring the test set; {resume_hint}"
    stopped = fit.stop_record()
    return score_test(job, run_dir, model, tokenizer, corpus, fit.state, device, stopped)


def score_test(
    job: TrainJob,
    run_dir: Path,
    model: Seq2Seq,
    tokenizer: Tokenizer,
    corpus: Corpus,
    state: TrainState,
    device: torch.device,
    stopped: dict,
) -> dict:
    """Score the best checkpoint on the test split: the test files, heatmaps and results.json
    (with `stopped`, how training ended: Fit.stop_record)."""
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    hyps, scores, before_unk = score_split(
        model, tokenizer, corpus.test, job.decode, device, job.cache_dir
    )
    write_split_files(run_dir, "test", corpus.test, hyps, before_unk)
    save_heatmaps(run_dir / "attention", model, tokenizer, corpus.test, job.decode, device)
    results = scores | {
        "params": count_parameters(model),
        "train_time_s": state.train_time_s,
        "train_tokens_per_s": state.train_tokens / max(state.train_time_s, 1e-9),
        "best_step": state.best_step,
        "best_dev_score": state.best_score,  # of trainer.early_stop_metric
        "steps": state.step,
        "nonfinite_steps": state.nonfinite_steps,
        **stopped,
        "decode": dataclasses.asdict(job.decode),
    }
    write_results(run_dir / "results.json", results)
    return results
