"""Parameters a module trains at a share of the rate (local-p's `predictor_lr`, a labelled
option the papers do not have): their own optimizer group, whose rate follows the schedule."""

import types

import pytest
import torch
from hydra import compose, initialize_config_dir
from toys import V, toy_batch

from nmt.config import CONFIG_DIR, Schedule, TrainerConfig, typed
from nmt.data.batching import make_batch
from nmt.errors import NmtError
from nmt.fast import accelerate
from nmt.models.attention import DotScore, LocalPAttention
from nmt.models.build import build_model
from nmt.training.run import build_optimizer
from nmt.training.step import train_step
from nmt.training.trainer import Fit

LOCAL_P = ["model=luong", "model/attention=local_p", "model.emb_size=8", "model.hidden_size=12"]


def one_update(predictor_lr: float, *overrides: str) -> tuple[torch.nn.Module, dict]:
    """A toy local-p model after one plain SGD update (no momentum: a step is lr x gradient),
    and its weights before."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*LOCAL_P, f"model.attention.predictor_lr={predictor_lr}", *overrides],
        )
    torch.manual_seed(0)
    model = build_model(cfg.model, src_vocab_size=V, tgt_vocab_size=V, joint_vocab=True)
    if cfg.fast:
        accelerate(model)
    optimizer = build_optimizer(cfg.optim.optimizer, model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    src, tgt = toy_batch()
    trainer = typed(TrainerConfig, cfg.trainer, "trainer")
    train_step(model, optimizer, make_batch(src, tgt, list(range(len(src)))), trainer, None)
    return model, before


@pytest.mark.parametrize("fast", [False, True])
def test_the_predictor_moves_at_its_share_of_the_rate(fast):
    sgd = ["optim=sgd_halving", "optim.optimizer.lr=0.5", f"fast={str(fast).lower()}"]
    full, start = one_update(1.0, *sgd)
    slow, same_start = one_update(0.1, *sgd)
    for name, p in full.named_parameters():
        torch.testing.assert_close(start[name], same_start[name])
        step_full = p.detach() - start[name]
        step_slow = dict(slow.named_parameters())[name].detach() - start[name]
        predictor = ".W_p." in name or ".v_p." in name
        assert step_full.abs().max() > 0, name
        want = 0.1 * step_full if predictor else step_full
        torch.testing.assert_close(step_slow, want, rtol=1e-4, atol=1e-7, msg=name)


def test_the_share_is_its_own_group_and_follows_the_schedule():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*LOCAL_P, "model.attention.predictor_lr=0.25"])
    model = build_model(cfg.model, src_vocab_size=V, tgt_vocab_size=V, joint_vocab=True)
    optimizer = build_optimizer(cfg.optim.optimizer, model)
    main, predictor = optimizer.param_groups
    lr = cfg.optim.optimizer.lr
    assert (main["lr"], main["lr_scale"]) == (lr, 1.0)
    assert (predictor["lr"], predictor["lr_scale"]) == (lr * 0.25, 0.25)
    assert len(predictor["params"]) == 2
    n = sum(len(g["params"]) for g in optimizer.param_groups)
    assert n == len(list(model.parameters()))
    halved = types.SimpleNamespace(  # a Fit one plateau halving into epoch 2 of 1-after-1
        optimizer=optimizer,
        job=types.SimpleNamespace(schedule=Schedule(lr, None, 1, 0.5)),
        state=types.SimpleNamespace(epoch=1, lr_scale=0.5),
    )
    Fit.set_lr(halved)
    assert main["lr"] == pytest.approx(lr * 0.25)
    assert predictor["lr"] == pytest.approx(lr * 0.25 * 0.25)


def test_the_paper_keeps_one_group():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=LOCAL_P)
    model = build_model(cfg.model, src_vocab_size=V, tgt_vocab_size=V, joint_vocab=True)
    assert len(build_optimizer(cfg.optim.optimizer, model).param_groups) == 1


def test_a_share_must_be_positive():
    with pytest.raises(NmtError, match="model.attention.predictor_lr"):
        LocalPAttention(query_size=4, key_size=4, score=DotScore, window=2, predictor_lr=0)
