"""The training loop, `Fit`: it trains (nmt.training.step), validates and judges
(nmt.training.state), writes checkpoints (nmt.checkpoint), halves the rate on a plateau and stops.

A run's position is fully described by `TrainState` plus the model, optimizer and RNG states, and
an epoch's batches are a pure function of (seed, epoch), so `Fit` continues a resumed run exactly
where its last checkpoint left it.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from nmt import files as jsonfile
from nmt.checkpoint import rng_state, save_checkpoint
from nmt.config import TrainJob
from nmt.data.batching import epoch_batches, make_batch
from nmt.data.spm import Tokenizer
from nmt.devices import check_precision
from nmt.errors import NmtError, RunInterruptedError
from nmt.models.seq2seq import Seq2Seq
from nmt.processes import World
from nmt.training.callbacks import call
from nmt.training.distributed import (
    Silent,
    from_main,
    gather,
    shard,
    step_tokens,
    wrap,
)
from nmt.training.signals import StopRequest
from nmt.training.state import (
    Data,
    TrainState,
    checkpoint_payload,
    improved,
    validate,
)
from nmt.training.step import skipped_update, train_step

log = logging.getLogger(__name__)


class Fit:
    """Runs the loop of one run directory: trains, validates, checkpoints, stops."""

    def __init__(
        self,
        job: TrainJob,
        run_dir: Path,
        model: Seq2Seq,
        optimizer: torch.optim.Optimizer,
        tokenizer: Tokenizer,
        data: Data,
        device: torch.device,
        state: TrainState,
        stop: StopRequest | None = None,
        world: World | None = None,
        scaler: torch.amp.GradScaler | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.job, self.run_dir, self.model, self.optimizer = job, run_dir, model, optimizer
        self.callbacks = list(callbacks)  # nmt.training.callbacks: on_train_start, ...
        self.world = world = world or World()
        self.scaler = scaler  # float16's, restored with the run
        self.train_model = wrap(model, world, device)  # DDP over the model where there are ranks
        self.stop = stop  # SIGINT / SIGTERM, seen between steps
        self.saved_step = state.step if state.step else None  # of last.pt
        self.tokenizer, self.data, self.device, self.state = tokenizer, data, device, state
        self.trainer, self.decode = job.trainer, job.decode
        check_precision(self.trainer.precision, device, "trainer.precision")
        self.ckpt_dir = run_dir / "checkpoints"
        self.window = {"loss": 0.0, "tokens": 0, "time": 0.0}
        # a resumed run drops the events logged after its checkpoint, as metrics.jsonl does
        self.tensorboard = (
            SummaryWriter(str(run_dir / "tensorboard"), purge_step=state.step or None)
            if world.main
            else Silent()
        )

    def save(self, name: str, with_optimizer: bool) -> None:
        """Rank 0 writes; with the optimizer (last.pt) every rank calls it, for its RNG state."""
        rngs = gather(self.world, rng_state()) if with_optimizer else []
        if self.world.main:
            payload = checkpoint_payload(self.job.saved, self.tokenizer, self.model, self.state)
            if with_optimizer:  # one rank's RNG state, or every rank's in rank order
                rng = rngs[0] if self.world.size == 1 else rngs
                payload |= {"optimizer": self.optimizer.state_dict(), "rng": rng}
                if self.scaler is not None:
                    payload["scaler"] = self.scaler.state_dict()
            save_checkpoint(self.ckpt_dir / name, payload)
        if name == "last.pt":
            self.saved_step = self.state.step

    def budget_left(self) -> bool:
        t = self.trainer
        if t.max_steps is not None and self.state.step >= t.max_steps:
            return False
        return self.state.epoch < t.max_epochs and not self.state.stopped_early

    def validate_and_save(self) -> None:
        """Rank 0 validates, logs and writes best.pt; every rank takes its verdict (the best
        score, a halving of the rate, an early stop) and joins the writing of last.pt."""
        if self.world.main:
            self.validate_and_log()
        state = self.state  # the loop holds this object: update it, do not replace it
        fields = ("best_score", "best_step", "bad_validations", "stopped_early")
        fields += ("lr_scale", "since_halving", "stop_reason")
        verdict = from_main(self.world, tuple(getattr(state, f) for f in fields))
        for field, value in zip(fields, verdict, strict=True):
            setattr(state, field, value)
        self.set_lr()
        self.save("last.pt", with_optimizer=True)  # after best.pt: resume never lacks a best

    def set_lr(self) -> None:
        """The schedule's rate at this epoch, times what the plateau halvings left (and a
        parameter group's own share, nmt.training.run.build_optimizer)."""
        lr = self.job.schedule.lr_at(self.state.epoch, self.state.lr_scale)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def judge(self, better: bool, value: float) -> None:
        """Take a validation's verdict: a new best; or one more validation without, which may
        halve the rate (optim.plateau_patience), stop at its floor (optim.lr_floor), or stop
        the run (trainer.patience)."""
        state, t, schedule = self.state, self.trainer, self.job.schedule
        if better:
            state.best_score, state.best_step = value, state.step
            state.bad_validations = state.since_halving = 0
            return
        state.bad_validations += 1
        state.since_halving += 1
        if schedule.plateau_patience and state.since_halving >= schedule.plateau_patience:
            state.lr_scale *= schedule.halve_factor
            state.since_halving = 0
            log.info(
                "step %d: no better dev score for %d validation(s): learning rate halved to %.3g",
                state.step,
                schedule.plateau_patience,
                schedule.lr_at(state.epoch, state.lr_scale),
            )
            if schedule.lr_floor and state.lr_scale < schedule.lr_floor:
                state.stopped_early, state.stop_reason = True, "rate_floor"
                log.info("step %d: stopping: the rate is below optim.lr_floor", state.step)
        if t.patience is not None and state.bad_validations >= t.patience:
            state.stopped_early, state.stop_reason = True, "plateau"
            log.info("step %d: stopping: no better dev score for %d", state.step, t.patience)

    def validate_and_log(self) -> None:
        state, t = self.state, self.trainer
        scores = validate(self.model, self.tokenizer, self.data, t, self.decode, self.device)
        better, value = improved(t, scores, state.best_score)
        self.judge(better, value)
        w = self.window
        record = {
            "step": state.step,
            "epoch": state.epoch,
            "train_loss": w["loss"] / max(w["tokens"], 1),
            **scores,
            "lr": self.optimizer.param_groups[0]["lr"],
            "tokens_per_s": w["tokens"] / max(w["time"], 1e-9),
            "elapsed_s": state.train_time_s,
        }
        jsonfile.append_jsonl(self.run_dir / "metrics.jsonl", record)
        call(self.callbacks, "on_validation", self, record)
        for key in ("dev_loss", "dev_ppl", "dev_bleu"):
            if record[key] is not None:
                self.tensorboard.add_scalar(key.replace("_", "/", 1), record[key], state.step)
        self.tensorboard.flush()
        self.window = {"loss": 0.0, "tokens": 0, "time": 0.0}
        bleu_text = "" if scores["dev_bleu"] is None else f" dev BLEU {scores['dev_bleu']:.2f}"
        log.info(
            "step %d: dev ppl %.2f%s%s",
            state.step,
            scores["dev_ppl"],
            bleu_text,
            " (best)" if better else "",
        )
        if better:
            self.save("best.pt", with_optimizer=False)

    def log_progress(self, progress: tqdm, loss: float, grad_norm: float) -> None:
        """The progress bar's postfix and the training scalars of TensorBoard."""
        lr = self.optimizer.param_groups[0]["lr"]
        tokens_per_s = self.window["tokens"] / max(self.window["time"], 1e-9)
        progress.set_postfix(
            loss=f"{loss:.3f}",
            lr=f"{lr:.2g}",
            tok_s=f"{tokens_per_s:.0f}",
            epoch=self.state.epoch + 1,
        )
        scalars = {"loss": loss, "grad_norm": grad_norm, "lr": lr, "tokens_per_s": tokens_per_s}
        for key, value in scalars.items():
            self.tensorboard.add_scalar(f"train/{key}", value, self.state.step)

    def batches(self, epoch: int) -> list:
        """This rank's batches of `epoch` (0-based), a function of the seed and the epoch."""
        t, d = self.trainer, self.data
        return shard(
            epoch_batches(
                [len(s) for s in d.train_src],
                [len(s) for s in d.train_tgt],
                batch_size=t.batch_size,
                batch_tokens=t.batch_tokens,
                pool=t.bucket_pool,
                seed=self.job.seed,
                epoch=epoch,
            ),
            self.world,
        )

    def epochs_done(self) -> float:
        """Epochs trained so far, the one in progress counted by its share of batches."""
        state = self.state
        if state.batch_in_epoch == 0:
            return float(state.epoch)
        return state.epoch + state.batch_in_epoch / max(1, len(self.batches(state.epoch)))

    def stop_record(self) -> dict:
        """How the run ended, for results.json: why (STOP_REASONS), after how many updates and
        epochs, and whether its last validation was still its best (a run that the cap stopped
        while improving has not converged)."""
        state = self.state
        return {
            "stop_reason": state.stop_reason,
            "epochs": round(self.epochs_done(), 3),
            "improving_at_stop": state.bad_validations == 0,
            "lr_scale": state.lr_scale,
        }

    def epoch(self, progress: tqdm) -> None:
        state, t, d = self.state, self.trainer, self.data
        batches = self.batches(state.epoch)
        self.set_lr()
        while state.batch_in_epoch < len(batches) and self.budget_left():
            batch = make_batch(d.train_src, d.train_tgt, batches[state.batch_in_epoch])
            if self.device.type == "cuda":
                batch = batch.pin_memory()  # its copy (non_blocking) overlaps the last step
            tokens, stop = step_tokens(self.world, batch.n_tokens, self.asked_to_stop())
            if stop:
                self.interrupt()
            start = time.perf_counter()
            loss, grad_norm = train_step(
                self.train_model,
                self.optimizer,
                batch.to(self.device),
                t,
                self.job.schedule.clip_norm,
                tokens,
                self.scaler,
            )
            elapsed = time.perf_counter() - start
            state.step += 1
            state.batch_in_epoch += 1
            state.train_time_s += elapsed
            state.train_tokens += batch.n_tokens
            progress.update(1)
            if skipped_update(loss, grad_norm, self.scaler is not None):
                self.skipped(loss, grad_norm)
                continue
            state.nonfinite_in_a_row = 0
            self.window["loss"] += loss
            self.window["tokens"] += batch.n_tokens
            self.window["time"] += elapsed
            call(self.callbacks, "on_step", self, loss / batch.n_tokens, grad_norm)
            if state.step % t.log_every == 0:
                self.log_progress(progress, loss / batch.n_tokens, grad_norm)
            if state.step % t.valid_every == 0:
                self.validate_and_save()
        if state.batch_in_epoch >= len(batches):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0

    def skipped(self, loss: float, grad_norm: float) -> None:
        """Count an update skipped for a non-finite loss or gradient norm; stop the run after
        `trainer.max_nonfinite` in a row (its last checkpoint is the last finite state)."""
        state, limit = self.state, self.trainer.max_nonfinite
        state.nonfinite_steps += 1
        state.nonfinite_in_a_row += 1
        log.warning(
            "step %d: loss %s, gradient norm %s: update skipped (%d in a row, %d in all)",
            state.step,
            loss,
            grad_norm,
            state.nonfinite_in_a_row,
            state.nonfinite_steps,
        )
        self.tensorboard.add_scalar("train/nonfinite_steps", state.nonfinite_steps, state.step)
        if state.nonfinite_in_a_row >= limit:
            raise NmtError(
                f"step {state.step}: the loss or gradient norm was not finite {limit} updates in "
                f"a row (trainer.max_nonfinite={limit}); the run stopped "
                + (
                    "before its first checkpoint"
                    if self.saved_step is None
                    else f"(its last checkpoint is at step {self.saved_step})"
                )
            )

    def asked_to_stop(self) -> bool:
        """Whether this process has had a SIGINT or SIGTERM."""
        return self.stop is not None and self.stop.signum is not None

    def interrupt(self) -> None:
        """After a SIGINT or SIGTERM (on any rank): save last.pt at this step and stop."""
        self.save("last.pt", with_optimizer=True)
        self.tensorboard.close()
        signum = self.stop.signum if self.asked_to_stop() else None
        raise RunInterruptedError(
            f"interrupted by {self.stop.name if signum else 'a signal to another rank'} at step "
            f"{self.state.step}: saved {self.ckpt_dir / 'last.pt'}; continue with: nmt-train "
            f"resume={self.run_dir}",
            signum or signal.SIGTERM,
        )

    def run(self) -> None:
        call(self.callbacks, "on_train_start", self)
        if self.stop is not None:
            self.stop.training = True  # a signal now waits for the step to end
        try:
            self.loop()
        finally:
            if self.stop is not None:
                self.stop.training = False

    def loop(self) -> None:
        t = self.trainer
        steps_per_epoch = max(1, len(self.data.train_src) // t.batch_size // self.world.size)
        total = t.max_steps if t.max_steps is not None else t.max_epochs * steps_per_epoch
        with tqdm(
            total=total,
            initial=self.state.step,
            desc="train",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0,
            disable=not self.world.main,
        ) as progress:
            while self.budget_left():
                self.epoch(progress)
        last = self.ckpt_dir / "last.pt"
        if not last.is_file() or self.state.step % t.valid_every != 0:
            self.validate_and_save()  # the budget ended between validations
        if step_tokens(self.world, 0, self.asked_to_stop())[1]:
            self.interrupt()
        if self.state.stop_reason is None:
            capped = t.max_steps is not None and self.state.step >= t.max_steps
            self.state.stop_reason = "max_steps" if capped else "max_epochs"
        self.tensorboard.close()
