"""Data-parallel training on CPU with gloo: a 2-rank step equals one process's step on the same
global batch, a 2-rank run killed and resumed ends as an uninterrupted one, and torchrun finds one
run directory for all its ranks."""

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from toys import TINY, V, build, kill_at_first_checkpoint

from nmt.checkpoint import load_checkpoint, rng_state
from nmt.config import TrainerConfig, defaults
from nmt.data.batching import make_batch
from nmt.data.specials import BOS, EOS
from nmt.errors import NmtError
from nmt.processes import World, world_from_env
from nmt.training import distributed
from nmt.training.distributed import shard
from nmt.training.run import restore
from nmt.training.state import TrainState
from nmt.training.step import train_step

MODELS = [
    pytest.param(["model=rnnsearch"], id="rnnsearch"),
    pytest.param(  # CI keeps the first
        ["model=luong", "model/attention=local_p", "model.encoder.num_layers=2"],
        id="luong_local_p",
        marks=pytest.mark.slow,
    ),
    pytest.param(["model=rnnencdec"], id="rnnencdec", marks=pytest.mark.slow),
]


def pairs() -> tuple[list, list]:
    """Six pairs of varied lengths: rank 0 takes the first three, rank 1 the rest."""
    g = torch.Generator().manual_seed(3)
    src = [torch.randint(4, V, (n,), generator=g).tolist() + [EOS] for n in (5, 2, 7, 3, 8, 4)]
    tgt = [
        [BOS] + torch.randint(4, V, (n,), generator=g).tolist() + [EOS] for n in (3, 6, 1, 9, 2, 5)
    ]
    return src, tgt


def one_step(model, index: list[int], tokens: float | None = None) -> None:
    src, tgt = pairs()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = defaults(TrainerConfig)
    train_step(model, optimizer, make_batch(src, tgt, index), trainer, 0.05, tokens)


def rank_step(rank: int, port: int, overrides: list[str], out: str) -> None:
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    os.environ |= {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
    torch.set_num_threads(1)
    world = world_from_env()
    distributed.start(world, torch.device("cpu"))
    model = build(*overrides)
    ddp = distributed.wrap(model, world, torch.device("cpu"))
    index = [[0, 1, 2], [3, 4, 5]][rank]
    batch_tokens = make_batch(*pairs(), index).n_tokens
    tokens, _ = distributed.step_tokens(world, batch_tokens, False)
    one_step(ddp, index, tokens)
    if world.main:
        torch.save(model.state_dict(), out)
    distributed.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("overrides", MODELS)
def test_a_two_rank_step_equals_one_process_on_the_global_batch(tmp_path, overrides):
    out = str(tmp_path / "ranks.pt")
    mp.spawn(rank_step, args=(free_port(), overrides, out), nprocs=2, join=True)
    single = build(*overrides)
    one_step(single, [0, 1, 2, 3, 4, 5])  # the clip at 0.05 acts on the global gradient
    ranks = torch.load(out, weights_only=True)
    before = build(*overrides).state_dict()
    for name, weight in single.state_dict().items():
        torch.testing.assert_close(ranks[name], weight, rtol=1e-5, atol=1e-6, msg=name)
    assert any(not torch.equal(w, before[n]) for n, w in single.state_dict().items())


def test_shard_gives_every_rank_the_same_number_of_batches():
    batches = [[i] for i in range(7)]
    assert shard(batches, World(0, 2)) == [[0], [2], [4]]
    assert shard(batches, World(1, 2)) == [[1], [3], [5]]  # batch 6 is dropped
    assert shard(batches, World()) == batches


def test_resume_on_another_number_of_ranks_is_refused(tmp_path):
    model = torch.nn.Linear(2, 2)
    saved = {
        "model": model.state_dict(),
        "optimizer": torch.optim.SGD(model.parameters(), lr=1).state_dict(),
        "rng": [rng_state(), rng_state()],
        "train_state": TrainState(step=4).__dict__,
        "config": {"trainer": {"max_steps": 8, "max_epochs": 2}},
    }
    job = SimpleNamespace(reset=(), trainer=SimpleNamespace(max_steps=8, max_epochs=2))
    optimizer = torch.optim.SGD(model.parameters(), lr=1)
    with pytest.raises(NmtError, match="trained on 2 rank"):
        restore(job, tmp_path, saved, model, optimizer, World())
    state = restore(job, tmp_path, saved, model, optimizer, World(1, 2))
    assert state.step == 4


RUN = [*TINY, "trainer.max_steps=60", "trainer.valid_every=10", "data.corpus.n_train=800"]
RUN += ["model.decoder.dropout=0.3", "seed=5", "trainer.devices=2"]


@pytest.mark.slow  # CI: a two-rank step equals one process, and torchrun's shared run directory
def test_two_ranks_killed_and_resumed_end_as_an_uninterrupted_run(run_cli, tmp_path, cache_dir):
    run_cli("train", *RUN, f"hydra.run.dir={tmp_path}/straight")
    killed = tmp_path / "killed"
    kill_at_first_checkpoint(RUN, killed, cache_dir)
    if load_checkpoint(killed / "checkpoints" / "last.pt")["step"] >= 60:
        pytest.skip("the run finished before it could be killed")

    run_cli("train", f"resume={killed}")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(killed / "checkpoints" / "last.pt")
    assert resumed["step"] == straight["step"] == 60
    assert len(resumed["rng"]) == 2  # every rank's RNG state
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 6


def test_torchrun_ranks_share_one_run_directory(run_cli, tmp_path, cache_dir):
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node=2", "-m", "nmt.train", *TINY]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()  # one directory for both ranks
    assert run_dir.name.startswith("torchrun-")
    assert (run_dir / "results.json").is_file() and (run_dir / "train.rank1.log").is_file()
    assert proc.stdout.count("test BLEU") == 1  # rank 0 alone scores and prints
