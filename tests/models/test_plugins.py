"""A new attention variant needs only a class, a YAML file and a test entry: here the class and
its YAML live outside the package and reach nmt through Hydra's config search path. A checkpoint
or run directory of such a model loads only when the user names the plug-in's module
(`allow_targets=[...]`): a file never chooses code outside nmt on its own (nmt.trust)."""

import json
import os
import subprocess
import sys
import textwrap

from toys import TINY

PLUGIN = '''
import torch
from torch import nn

from nmt.models.attention import as_sequence, finish, masked_softmax, weighted_sum


class FirstTokenAttention(nn.Module):
    """Attends mostly to the first source token (a made-up variant for the test)."""

    def __init__(self, *, query_size: int, key_size: int, sharpness: float = 1.0) -> None:
        super().__init__()
        self.sharpness = sharpness
        self.W_q = nn.Linear(query_size, 1)

    def project_keys(self, memory):
        return memory

    def forward(self, query, keys, memory, mask, step=0):
        query, single = as_sequence(query)
        positions = torch.arange(memory.size(1), dtype=memory.dtype)
        scores = -self.sharpness * positions + self.W_q(query)  # (B, T, S)
        weights = masked_softmax(scores, mask)
        return finish(weighted_sum(weights, memory), weights, single)
'''


def test_a_variant_from_outside_the_package_trains(tmp_path, cache_dir):
    (tmp_path / "my_attention.py").write_text(textwrap.dedent(PLUGIN))
    config = tmp_path / "configs" / "model" / "attention"
    config.mkdir(parents=True)
    (config / "first_token.yaml").write_text(
        "_target_: my_attention.FirstTokenAttention\nsharpness: 2.0\n"
    )
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(tmp_path)}
    for model in ("rnnsearch", "luong"):
        run = tmp_path / model
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "nmt.train",
                *TINY,
                f"model={model}",
                "model/attention=first_token",
                "trainer.max_steps=2",
                "trainer.valid_every=2",
                f"hydra.searchpath=[file://{tmp_path / 'configs'}]",
                f"hydra.run.dir={run}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "FirstTokenAttention" in (run / "train.log").read_text()
        assert json.loads((run / "results.json").read_text())["bleu"] >= 0

    def nmt(command: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", f"nmt.{command}", *args],
            env=env,
            input="a b c\n",
            capture_output=True,
            text=True,
            timeout=300,
        )

    best = f"checkpoint={run / 'checkpoints' / 'best.pt'}"
    refused = nmt("translate", best)
    assert refused.returncode == 2 and "my_attention.FirstTokenAttention" in refused.stderr
    assert "allow_targets" in refused.stderr and refused.stdout == ""
    allowed = nmt("translate", best, "allow_targets=[my_attention]")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert len(allowed.stdout.splitlines()) == 1
    refused = nmt("train", f"resume={run}", "trainer.max_steps=4")
    assert refused.returncode == 2 and "my_attention.FirstTokenAttention" in refused.stderr
    resumed = nmt("train", f"resume={run}", "trainer.max_steps=4", "allow_targets=[my_attention]")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "results.json").read_text())["steps"] == 4
