"""Work items spread over single-thread processes on CPU.

Decoding on a few cores is bound by small matrix products: a step over the last sentences of a
batch is a handful of rows against the whole weight, too little to split over threads. Two
1-thread processes, each decoding its own batches, keep both cores busy where one 2-thread
process waits on its slowest step (`decode.workers`, measured in docs/performance.md).

    results = map_items(decode_batch, len(batches), workers=2)   # [decode_batch(0), ...]

This process is one of the workers; the others are forked from it, so they share the model's
weights without copying or pickling them. Every worker runs one thread: GNU OpenMP, which runs
torch's CPU kernels, is not fork-safe, and a forked child that starts a team of more than one
thread after its parent has used one waits forever (DataLoader workers run one thread for the
same reason). Items go to whichever worker is free, in index order (callers give the costliest
first). Results come back through a pipe, pickled: they must be plain Python and NumPy (no
tensors, which torch would send as shared memory).
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import torch

from nmt.errors import NmtError

T = TypeVar("T")
DONE = -1  # a worker's last message: its index


def _take(counter) -> int:
    """The next item's index from the shared counter."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    return index


def _work(fn: Callable[[int], T], count: int, counter, results) -> None:
    """A forked worker: items until none is left, each result (or error) sent back."""
    torch.set_num_threads(1)
    try:
        while (index := _take(counter)) < count:
            results.put((index, fn(index)))
    except BaseException:  # the parent raises it; this process only reports
        results.put((None, traceback.format_exc()))
    results.put((DONE, None))
    results.close()
    results.join_thread()


def map_items(fn: Callable[[int], T], count: int, workers: int = 1) -> list[T]:
    """[fn(0), ..., fn(count - 1)] computed by `workers` one-thread processes on CPU, this one
    included; with workers = 1, here with torch's threads as they are."""
    workers = min(workers, count)  # DecodeConfig has checked workers >= 1
    if workers <= 1:
        return [fn(i) for i in range(count)]
    if "fork" not in multiprocessing.get_all_start_methods():
        raise NmtError(
            f"decode.workers: {workers} processes need fork(), which {sys.platform} lacks"
        )
    context = multiprocessing.get_context("fork")
    counter, results = context.Value("l", 0), context.Queue()
    total = torch.get_num_threads()
    sys.stdout.flush()  # a forked child flushes what it inherits when it exits
    sys.stderr.flush()
    children = [
        context.Process(target=_work, args=(fn, count, counter, results), daemon=True)
        for _ in range(workers - 1)
    ]
    for child in children:
        child.start()
    out: dict[int, T] = {}
    try:
        torch.set_num_threads(1)
        while (index := _take(counter)) < count:
            out[index] = fn(index)
        _collect(results, children, out)
    finally:
        torch.set_num_threads(total)
        for child in children:
            if child.is_alive():
                child.kill()
            child.join()
    return [out[i] for i in range(count)]


def _collect(results, children: list, out: dict) -> None:
    """The children's results into `out`, until each has said it is done."""
    running = len(children)
    while running:
        try:
            index, value = results.get(timeout=1.0)
        except queue.Empty:
            dead = [c.exitcode for c in children if c.exitcode not in (None, 0)]
            if dead:
                raise NmtError(
                    f"decode.workers: a worker process died (exit code {dead[0]})"
                ) from None
            continue
        if index is None:
            raise NmtError(f"decode.workers: a worker process failed:\n{value}")
        if index == DONE:
            running -= 1
        else:
            out[index] = value
