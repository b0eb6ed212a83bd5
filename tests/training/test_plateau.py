"""The convergence protocol (protocol=converge): the rate halves on a plateau of the dev score,
the run stops after a patience, at the rate floor or at its cap and says which, and a run
killed with SIGKILL mid-plateau resumes to the same end, bit for bit."""

import json
import types

import pytest
import torch
from toys import TINY, kill_when

from nmt.checkpoint import load_checkpoint
from nmt.config import Schedule, TrainerConfig, defaults
from nmt.training.state import TrainState
from nmt.training.trainer import Fit


def judge_all(verdicts: list[bool], patience: int | None, plateau: int, floor: float | None):
    """Fit.judge over a run of validations (True: a better dev score); the states after each."""
    trainer = defaults(TrainerConfig, patience=patience)
    schedule = Schedule(1.0, None, None, 0.5, plateau_patience=plateau, lr_floor=floor)
    fit = types.SimpleNamespace(state=TrainState(), trainer=trainer)
    fit.job = types.SimpleNamespace(schedule=schedule)
    states = []
    for step, better in enumerate(verdicts, start=1):
        fit.state.step = step
        Fit.judge(fit, better, -step)
        states.append((fit.state.lr_scale, fit.state.stop_reason))
    return states


def test_the_rate_halves_after_the_plateau_patience_and_an_improvement_resets_it():
    states = judge_all([True, False, False, True, False, True, False, False], None, 2, None)
    assert [scale for scale, _ in states] == [1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert all(reason is None for _, reason in states)


def test_the_run_stops_at_the_rate_floor_or_after_its_patience():
    floor = judge_all([True, False, True, False, True, False], None, 1, 0.2)
    assert [s for s, _ in floor] == [1, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert floor[-1][1] == "rate_floor" and floor[-2][1] is None
    patience = judge_all([True, False, False, False], 3, 2, None)
    assert patience[-1] == (0.5, "plateau") and patience[-2][1] is None


RUN = [
    *TINY,
    "protocol=converge",
    "trainer.max_steps=null",
    "trainer.valid_every=5",
    "trainer.valid_bleu=false",
    "optim.plateau_patience=1",
    "optim.lr_floor=0.2",  # three halvings and the run stops: a short test
    "optim.optimizer.lr=0.05",
    "seed=3",
]


def halved(run_dir):
    """ready(): whether the run's last.pt holds a halved rate (read once per new last.pt)."""
    last, seen = run_dir / "checkpoints" / "last.pt", {"stamp": None}

    def ready() -> bool:
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp is None or stamp == seen["stamp"]:
            return False
        seen["stamp"] = stamp
        return load_checkpoint(last)["train_state"]["lr_scale"] < 1

    return ready


@pytest.mark.slow  # CI: the halving and stopping unit tests above, and exact resume in test_resume
def test_a_run_killed_on_its_plateau_resumes_to_the_same_end(run_cli, tmp_path, cache_dir):
    run_cli("train", *RUN, f"hydra.run.dir={tmp_path}/straight")
    killed = tmp_path / "killed"
    kill_when(RUN, killed, cache_dir, halved(killed))
    if (killed / "results.json").exists():
        pytest.skip("the run finished before it could be killed")
    run_cli("train", f"resume={killed}")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(killed / "checkpoints" / "last.pt")
    timing = {"train_time_s": 0.0}  # the one thing that differs: time is time
    assert resumed["train_state"] | timing == straight["train_state"] | timing
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    results = json.loads((killed / "results.json").read_text())
    assert results["stop_reason"] in ("plateau", "rate_floor")
    assert results["lr_scale"] < 1 and results["epochs"] > 1
    assert not results["improving_at_stop"]
    assert results == json.loads((tmp_path / "straight" / "results.json").read_text()) | {
        k: results[k] for k in ("train_time_s", "train_tokens_per_s")
    }
