"""A run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run."""

import json

import pytest
import torch
from toys import TINY, kill_at_first_checkpoint

from nmt.checkpoint import load_checkpoint

RUN = [
    *TINY,
    "trainer.max_steps=240",
    "trainer.valid_every=20",
    "data.corpus.n_train=800",
    "model.encoder.dropout=0.3",
    "model.decoder.dropout=0.3",
    "seed=7",
]


@pytest.mark.slow  # CI keeps the 2-rank SIGKILL test (test_distributed) and the SIGTERM ones
def test_sigkill_then_resume_matches_an_uninterrupted_run(run_cli, tmp_path, cache_dir):
    run_cli("train", *RUN, f"hydra.run.dir={tmp_path}/straight")

    killed = tmp_path / "killed"
    kill_at_first_checkpoint(RUN, killed, cache_dir)
    at_kill = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]
    if at_kill >= 240:
        pytest.skip("the run finished before it could be killed")

    run_cli("train", f"resume={killed}")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(killed / "checkpoints" / "last.pt")
    assert resumed["step"] == straight["step"] == 240
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    steps = [line for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 12  # one record per validation, none duplicated by the resume


def test_resume_refuses_to_change_anything_but_the_budget_and_drops_a_torn_line(run_cli, tmp_path):
    run_cli("train", *TINY, f"hydra.run.dir={tmp_path}/run")
    proc = run_cli("train", f"resume={tmp_path}/run", "optim.optimizer.lr=0.5", check=False)
    assert proc.returncode != 0 and "optim.optimizer.lr" in proc.stderr
    assert "Traceback" not in proc.stderr
    metrics = tmp_path / "run" / "metrics.jsonl"
    before = metrics.read_text().splitlines()
    with open(metrics, "a") as f:
        f.write('{"step": 99, "train_lo')  # a kill or a full disk during an append
    proc = run_cli("train", f"resume={tmp_path}/run", "trainer.max_steps=18")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 18
    # the torn line was dropped with a warning, the others kept
    assert "metrics.jsonl: its last line is cut short" in proc.stderr + proc.stdout
    after = metrics.read_text().splitlines()
    assert after[: len(before)] == before and json.loads(after[-1])["step"] == 18
