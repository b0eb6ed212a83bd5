"""Training callbacks (nmt.training.callbacks): the hooks Fit calls, and AttentionTrace's figures
on weights whose answer is known and on a toy run, through nmt-train and the trace script."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from toys import TINY

from nmt.models.attention import DotScore, GlobalAttention, LocalPAttention
from nmt.training.callbacks import AttentionTrace, pearson_rows, row_std

SCRIPT = Path(__file__).parents[2] / "scripts" / "trace_attention.py"


def traced(trace: AttentionTrace, step: int, tmp_path) -> dict:
    fit = types.SimpleNamespace(state=types.SimpleNamespace(step=step))
    fit.world = types.SimpleNamespace(main=True)
    trace.path = tmp_path / "trace.jsonl"
    trace.on_step(fit, 0.0, 0.0)
    return json.loads(trace.path.read_text().splitlines()[-1])


def test_figures_of_one_hot_and_uniform_weights(tmp_path):
    """Weights all on the last real position: entropy 0, max weight 1, every argmax on </s>;
    uniform weights over 4 real positions: entropy log 4, max weight 1/4, none on </s>."""
    attention = GlobalAttention(query_size=3, key_size=3, score=DotScore)
    trace = AttentionTrace(every=1)
    mask = torch.tensor([[True, True, True, True, False]])  # (B=1, S=5): </s> at 3
    query, keys = torch.zeros(1, 2, 3), torch.randn(1, 5, 3)
    one_hot = torch.zeros(1, 2, 5)
    one_hot[..., 3] = 1.0
    uniform = mask.float().div(4).unsqueeze(1).expand(1, 2, 5)
    lines = []
    for step, weights in enumerate((one_hot, uniform), start=1):
        trace.record(attention, (query, keys, keys, mask), (None, weights))
        lines.append(traced(trace, step, tmp_path))
    assert lines[0] == {
        "step": 1,
        "entropy": 0.0,
        "max_weight": 1.0,
        "on_eos": 1.0,
        "score_std": 0.0,
        "soft_entropy": pytest.approx(math.log(4)),  # zero queries: equal scores, uniform
    }
    assert lines[1]["entropy"] == pytest.approx(math.log(4)) and lines[1]["max_weight"] == 0.25
    assert lines[1]["on_eos"] == 0.0


def test_local_p_figures_say_where_p_t_sits():
    """A predictor pushed far positive puts p_t on </s>, saturated; the figures say so."""
    attention = LocalPAttention(query_size=4, key_size=4, score=DotScore, window=2)
    torch.nn.init.constant_(attention.W_p.weight, 1.0)
    torch.nn.init.constant_(attention.v_p.weight, 10.0)
    trace = AttentionTrace(every=1)
    mask = torch.ones(2, 6, dtype=torch.bool)
    query, keys = torch.ones(2, 3, 4), torch.randn(2, 6, 4)
    weights = attention(query, keys, keys, mask)[1]
    trace.record(attention, (query, keys, keys, mask), (None, weights))
    means = {k: trace.sums[k] / trace.counts[k] for k in trace.sums}
    assert means["p_rel"] == pytest.approx(1.0) and means["p_logit"] > 30
    assert means["p_corr"] == 0.0  # the same p_t at every target position: no spread


def test_score_std_is_taken_within_each_row_over_real_positions():
    """Rows [0, 2 | pad] and [5, 7 | pad]: each has std sqrt(2) over its two real positions,
    whatever the padding holds and however far apart the rows lie."""
    scores = torch.tensor([[[0.0, 2.0, 100.0], [5.0, 7.0, -100.0]]])  # (B=1, T=2, S=3)
    mask = torch.tensor([[True, True, False]])
    assert row_std(scores, mask).item() == pytest.approx(math.sqrt(2))
    rising = torch.arange(5.0).expand(2, 5)
    assert pearson_rows(rising, 2 * rising).item() == pytest.approx(1.0)


def test_the_trace_script_writes_a_line_every_n_updates(cache_dir, tmp_path):
    """12 updates, a line every 6: two lines whose entropies lie within [0, log S]."""
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--every", "6", *TINY, "model=luong",
         "model/attention=local_p", f"hydra.run.dir={run}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in (run / "attention_trace.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [6, 12]
    for line in lines:
        assert 0.0 < line["entropy"] <= math.log(8 * 3 + 1)  # <= 8 words of <= 3 pieces, </s>
        assert 0.0 <= line["p_rel"] <= 1.0 and -1.0 <= line["p_corr"] <= 1.0
    assert "attention: entropy" in proc.stderr
    assert (run / "results.json").is_file()


def test_nmt_train_refuses_to_trace_the_fast_layer(run_cli, tmp_path):
    proc = run_cli(
        "train", *TINY, "+callbacks=trace_attention", f"hydra.run.dir={tmp_path}/r", check=False
    )
    assert proc.returncode == 2 and "trace with fast=false" in proc.stderr
