"""Data-parallel training over N processes with torch.distributed (DistributedDataParallel).

The ranks come from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), from
submitit's in a SLURM job of several tasks, or from `nmt-train trainer.devices=N`, which starts N
ranks on this machine through torch's elastic launcher (`launch`). Every rank builds the same
model (DDP broadcasts rank 0's weights), takes every W-th batch of the epoch's length-bucketed
batch list (`shard`), and joins the gradient all-reduce of each step; rank 0 alone validates,
logs, writes checkpoints and scores the test set. The backend is gloo on CPU and nccl on CUDA.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from nmt.processes import World

log = logging.getLogger(__name__)


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (gloo on CPU, nccl on CUDA); returns this rank's device."""
    if world.size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The module a training step calls: DDP over `model` when there are several ranks (its
    gradients all-reduced and averaged in backward), else `model` itself."""
    if world.size == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


@contextlib.contextmanager
def main_first(world: World) -> Iterator[None]:
    """Rank 0 runs the block first (training and caching the tokenizer, say), then the others,
    which find its work in the cache."""
    if world.size > 1 and not world.main:
        dist.barrier()
    yield
    if world.size > 1 and world.main:
        dist.barrier()


def shard(batches: list, world: World) -> list:
    """Rank r's batches of an epoch: batches r, r + W, r + 2W, ...; the last len(batches) % W
    are dropped, so every rank takes the same number of steps. Step k's global batch is
    batches kW .. kW + W - 1, and a resumed run finds it again from (seed, epoch)."""
    usable = len(batches) - len(batches) % world.size
    return batches[world.rank : usable : world.size]


def step_tokens(world: World, tokens: int, stop_asked: bool) -> tuple[float, bool]:
    """What the ranks agree on before a step: the loss normaliser (the global batch's target
    tokens over W, so that DDP's mean of the ranks' gradients is the gradient of the global
    mean token loss) and whether any rank was asked to stop."""
    if world.size == 1:
        return float(tokens), stop_asked
    both = torch.tensor([float(tokens), float(stop_asked)], dtype=torch.float64)
    dist.all_reduce(both)
    return float(both[0]) / world.size, bool(both[1] > 0)


def gather(world: World, value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (on every rank)."""
    if world.size == 1:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def from_main(world: World, value: Any) -> Any:
    """Rank 0's `value`, on every rank."""
    if world.size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class Silent:
    """What the ranks other than 0 log to instead of TensorBoard: nothing."""

    def add_scalar(self, *args: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
