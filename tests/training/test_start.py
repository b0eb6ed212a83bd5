"""How a run starts besides afresh: fine-tuning from a checkpoint (init_from=) and resuming with
the optimizer or the early-stopping state reset."""

import json
import re
import shutil
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from toys import LEARN, TINY

from nmt.checkpoint import load_checkpoint, rng_state
from nmt.errors import NmtError
from nmt.training.run import restore
from nmt.training.start import resumed_config
from nmt.training.state import TrainState

# the learned run's data and training, without what a fine-tuning run takes from its checkpoint
DATA = [o for o in LEARN if not o.startswith(("model.", "tokenizer."))]


def test_fine_tuning_starts_from_the_checkpoints_weights_and_tokenizer(
    learned_run, run_cli, tmp_path
):
    run_dir, _ = learned_run
    best = run_dir / "checkpoints" / "best.pt"
    tuned = tmp_path / "tuned"
    # lr 0 keeps the weights as they came: the new run must score exactly as its source did
    run_cli(
        "train",
        *DATA,
        f"init_from={best}",
        "optim.optimizer.lr=0.0",
        "trainer.max_steps=2",
        f"hydra.run.dir={tuned}",
    )
    ours = json.loads((tuned / "results.json").read_text())
    theirs = json.loads((run_dir / "results.json").read_text())
    assert ours["steps"] == 2 and ours["bleu"] == theirs["bleu"]
    assert (tuned / "test.hyp").read_text() == (run_dir / "test.hyp").read_text()
    source, started = load_checkpoint(best), load_checkpoint(tuned / "checkpoints" / "last.pt")
    assert started["tokenizer"] == source["tokenizer"]
    assert started["config"]["model"] == source["config"]["model"]  # not the default model
    saved = OmegaConf.to_container(OmegaConf.load(tuned / ".hydra" / "config.yaml"))
    assert saved["model"] == source["config"]["model"]  # what resume= will rebuild

    run_cli("train", f"resume={tuned}", "trainer.max_steps=3")  # a fine-tuned run resumes
    assert load_checkpoint(tuned / "checkpoints" / "last.pt")["step"] == 3


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["model.hidden_size=8"], "its weights do not fit the model its config describes"),
        (["model/attention=luong_dot"], "'model/attention' cannot be chosen"),
        (["tokenizer.vocab_size=50"], "'tokenizer.vocab_size' cannot be chosen"),
    ],
)
def test_fine_tuning_refuses_another_model_in_one_line(
    learned_run, run_cli, tmp_path, overrides, expected
):
    run_dir, _ = learned_run
    init = f"init_from={run_dir}/checkpoints/best.pt"
    proc = run_cli("train", *DATA, init, *overrides, f"hydra.run.dir={tmp_path}/x", check=False)
    assert proc.returncode != 0 and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()  # a failed launch leaves nothing


def test_init_from_a_missing_checkpoint_is_one_line(run_cli, tmp_path):
    proc = run_cli("train", *TINY, f"init_from={tmp_path}/none.pt", check=False)
    assert proc.returncode != 0 and f"{tmp_path}/none.pt: no such file" in proc.stderr


@pytest.mark.slow  # CI keeps test_restore_resets_what_it_is_told; cli/test_train.py the refusals
def test_resume_with_a_fresh_optimizer(run_cli, tmp_path):
    run_cli("train", *TINY, "trainer.max_steps=6", f"hydra.run.dir={tmp_path}/a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    run_cli("train", f"resume={tmp_path}/a", "trainer.max_steps=9")
    proc = run_cli("train", f"resume={tmp_path}/b", "trainer.max_steps=9", "reset=optimizer")
    assert "resuming with a reset of optimizer" in proc.stderr
    kept, fresh = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt") for d in "ab")
    adam_steps = [float(s["step"]) for s in fresh["optimizer"]["state"].values()]
    assert set(adam_steps) == {3.0}  # the reset optimizer took the last 3 updates only
    assert {float(s["step"]) for s in kept["optimizer"]["state"].values()} == {9.0}
    assert any(not torch.equal(kept["model"][k], v) for k, v in fresh["model"].items())


def saved_run(state: TrainState) -> tuple:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    budget = {"max_steps": 10, "max_epochs": 5}
    saved = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(),
        "train_state": state.__dict__,
        "config": {"trainer": budget},
    }
    return saved, SimpleNamespace(**budget)


@pytest.mark.parametrize("reset", [(), ("early_stopping",), ("optimizer",)])
def test_restore_resets_what_it_is_told(tmp_path, reset):
    stopped = TrainState(
        step=8, best_score=20.0, best_step=4, bad_validations=2, stopped_early=True
    )
    saved, trainer = saved_run(stopped)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    job = SimpleNamespace(reset=reset, trainer=trainer)
    state = restore(job, tmp_path, saved, model, optimizer)
    assert state.step == 8 and state.best_score == 20.0 and state.best_step == 4
    if "early_stopping" in reset:
        assert state.bad_validations == 0 and not state.stopped_early
    else:
        assert state.bad_validations == 2 and state.stopped_early
    assert bool(optimizer.state) == ("optimizer" not in reset)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_a_resumed_budget_must_be_a_whole_number(tmp_path, value):
    (tmp_path / ".hydra").mkdir()
    saved = OmegaConf.create({"trainer": {"max_steps": 10}})
    OmegaConf.save(saved, tmp_path / ".hydra" / "config.yaml")
    with pytest.raises(NmtError, match=f"trainer.max_steps must be .* not '{re.escape(value)}'"):
        resumed_config(tmp_path, [f"resume={tmp_path}", f"trainer.max_steps={value}"], None)
    cfg = resumed_config(tmp_path, [f"resume={tmp_path}", "trainer.max_steps=20"], None)
    assert cfg.trainer.max_steps == 20
