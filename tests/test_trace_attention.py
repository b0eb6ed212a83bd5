"""scripts/trace_attention.py: its figures on weights whose answer is known, and a toy run."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from toys import TINY

from nmt.models.attention import GlobalAttention

SCRIPT = Path(__file__).parents[1] / "scripts" / "trace_attention.py"
spec = importlib.util.spec_from_file_location("trace_attention", SCRIPT)
trace_attention = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trace_attention)


def test_figures_of_one_hot_and_uniform_weights(capsys):
    """Weights all on the last real position: entropy 0, max weight 1, every argmax on </s>;
    uniform weights over 4 real positions: entropy log 4, max weight 1/4, none on </s>."""
    attention = GlobalAttention(query_size=3, key_size=3, score="dot")
    trace = trace_attention.Trace(every=1)
    mask = torch.tensor([[True, True, True, True, False]])  # (B=1, S=5): </s> at 3
    query, keys = torch.zeros(1, 2, 3), torch.randn(1, 5, 3)
    one_hot = torch.zeros(1, 2, 5)
    one_hot[..., 3] = 1.0
    uniform = mask.float().div(4).unsqueeze(1).expand(1, 2, 5)
    for weights in (one_hot, uniform):
        trace.record(attention, (query, keys, keys, mask), (None, weights))
        trace.step()
    lines = capsys.readouterr().out.splitlines()
    figures = [[float(x) for x in re.findall(r"-?\d+\.\d+", line)] for line in lines]
    # entropy, score std (zero queries: every score 0), max weight, on </s>
    assert figures[0] == [0.0, 0.0, 1.0, 1.0]
    assert figures[1] == [round(math.log(4), 2), 0.0, 0.25, 0.0]


def test_a_toy_run_prints_a_line_every_n_steps(cache_dir, tmp_path):
    """12 steps, a line every 6: two lines whose entropies lie within [0, log S]."""
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--every", "6", *TINY, "model=luong",
         f"hydra.run.dir={tmp_path / 'run'}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 6", "step 12"]
    for line in lines:
        entropy = float(re.search(r"entropy (\d+\.\d+)", line).group(1))
        assert 0.0 < entropy <= math.log(8 * 3 + 1)  # 8 words of <= 3 pieces (w, digits), </s>
    assert (tmp_path / "run" / "results.json").is_file()


def test_score_std_is_taken_within_each_row_over_real_positions():
    """Rows [0, 2 | pad] and [5, 7 | pad]: each has std sqrt(2) over its two real positions,
    whatever the padding holds and however far apart the rows lie."""
    scores = torch.tensor([[[0.0, 2.0, 100.0], [5.0, 7.0, -100.0]]])  # (B=1, T=2, S=3)
    mask = torch.tensor([[True, True, False]])
    assert trace_attention.row_std(scores, mask).item() == pytest.approx(math.sqrt(2))
