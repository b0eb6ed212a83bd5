"""Decoding over processes (nmt/decoding/parallel.py, decode.workers) against one process."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from toys import SCORE_TOLERANCE, SEARCH_MODELS, model_for, sources

from nmt.config import DecodeConfig, defaults
from nmt.decoding.parallel import map_items
from nmt.decoding.translate import translate_ids, translate_lines
from nmt.errors import NmtError


def slow_pid(i: int) -> tuple[int, int]:
    time.sleep(0.05)  # long enough that every worker takes some items
    return i * i, os.getpid()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_items_come_back_in_order_and_spread_over_processes(workers):
    threads = torch.get_num_threads()
    out = map_items(slow_pid, 9, workers)
    assert [value for value, _ in out] == [i * i for i in range(9)]
    assert len({pid for _, pid in out}) == workers
    assert torch.get_num_threads() == threads  # this process's threads given back


def test_more_workers_than_items_and_no_items():
    assert [v for v, _ in map_items(slow_pid, 2, 4)] == [0, 1]
    assert map_items(slow_pid, 0, 2) == []


def fails_in_child(i: int) -> int:
    if i == 3:
        raise ValueError("item 3 is bad")
    time.sleep(0.05)
    return i


def dies_in_child(i: int) -> int:
    if os.getpid() != PARENT:
        os._exit(3)
    time.sleep(0.05)
    return i


PARENT = os.getpid()


def test_a_worker_error_or_death_is_raised_not_waited_for():
    with pytest.raises((NmtError, ValueError), match="item 3 is bad"):
        map_items(fails_in_child, 8, 2)
    with pytest.raises(NmtError, match="died"):
        map_items(dies_in_child, 8, 2)
    with pytest.raises(NmtError, match="decode.workers: must be at least 1"):
        defaults(DecodeConfig, workers=0)


class Ids:
    """A tokenizer whose source 'lines' are already ids."""

    def __init__(self, ids):
        self.encode_src = lambda lines: [ids[int(line)] for line in lines]


@pytest.mark.parametrize("beam", [1, 3])
@pytest.mark.parametrize("overrides", SEARCH_MODELS)
def test_two_workers_translate_as_one_process(overrides, beam):
    model = model_for(*overrides)
    ids = sources(21)
    lines = [str(i) for i in range(len(ids))]
    kw = dict(beam_size=beam, n_best=beam, max_len_ratio=1.5, max_len_extra=3, batch_size=4)
    one = translate_lines(model, Ids(ids), lines, defaults(DecodeConfig, **kw), torch.device("cpu"))
    two = translate_lines(
        model, Ids(ids), lines, defaults(DecodeConfig, workers=2, **kw), torch.device("cpu")
    )
    for a, b in zip(one, two, strict=True):
        assert [h.ids for h in a] == [h.ids for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], **SCORE_TOLERANCE)
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x.attention, y.attention)


def test_workers_are_for_cpu():
    model = model_for("model=rnnsearch")
    cfg = defaults(DecodeConfig, workers=2)
    with pytest.raises(NmtError, match="decode.workers: 2 processes are for decoding on CPU"):
        translate_ids(model, [[4, 2]], cfg, torch.device("cuda"))


def test_a_platform_without_fork_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("multiprocessing.get_all_start_methods", lambda: ["spawn"])
    with pytest.raises(NmtError, match="decode.workers: 2 processes need fork"):
        map_items(slow_pid, 4, 2)
    assert [v for v, _ in map_items(slow_pid, 2, 1)] == [0, 1]  # one process needs none


def test_workers_survive_the_parent_openmp_threads():
    # A forked child that starts an OpenMP team of several threads after its parent has used one
    # waits forever; every worker runs one thread, so this finishes (it hung with two each).
    code = """
import torch
from nmt.decoding.parallel import map_items
torch.set_num_threads(4)
a = torch.randn(512, 512)
(a @ a).sum()  # the parent's OpenMP team is up
def work(i):
    return float((a @ a).sum()), torch.get_num_threads()
out = map_items(work, 6, workers=2)
assert {threads for _, threads in out} == {1}, out
assert torch.get_num_threads() == 4
"""
    run = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        assert run.wait(timeout=120) == 0
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)  # the hung children too
        pytest.fail("two workers hung after the parent's OpenMP team had run")


def test_fewer_workers_than_threads_says_so(caplog):
    model = model_for(*SEARCH_MODELS[0])
    cfg = defaults(DecodeConfig, workers=2, max_len_ratio=0.0, max_len_extra=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        with caplog.at_level("WARNING", logger="nmt.decoding.translate"):
            translate_lines(model, Ids(sources(4)), ["0", "1"], cfg, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert "torch has 4 threads, which decode.workers=4 would use" in caplog.text
