"""The toy model the translate and evaluate tests share, learned once by nmt-train."""

import subprocess

import pytest
from toys import TINY

LEARN = [
    *TINY,
    "model.emb_size=32",
    "model.hidden_size=64",
    "trainer.max_steps=null",
    "trainer.max_epochs=10",
    "trainer.valid_every=250",
    "trainer.batch_size=32",
    "data.corpus.n_train=2000",
    "data.corpus.n_test=100",
    "optim.optimizer.lr=0.005",
    "model.init=uniform",
]


@pytest.fixture(scope="session")
def learned_run(tmp_path_factory, cache_dir):
    """A toy model trained well enough to have a real BLEU (shared by several tests)."""
    import os
    import sys

    run_dir = tmp_path_factory.mktemp("learned")
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "nmt.train", *LEARN, f"hydra.run.dir={run_dir}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc


@pytest.fixture
def translate_first(learned_run, run_cli):
    """translate_first(n, *overrides, cwd=None) -> (nmt-translate's lines for the learned run's
    first n test sources, from its best checkpoint; the lines the run itself wrote for them)."""
    run_dir, _ = learned_run

    def translate(n: int, *overrides: str, cwd=None) -> tuple[list[str], list[str]]:
        sources = (run_dir / "test.src").read_text().splitlines()[:n]
        checkpoint = f"checkpoint={run_dir}/checkpoints/best.pt"
        proc = run_cli(
            "translate", checkpoint, *overrides, input="\n".join(sources) + "\n", cwd=cwd
        )
        return proc.stdout.splitlines(), (run_dir / "test.hyp").read_text().splitlines()[:n]

    return translate
