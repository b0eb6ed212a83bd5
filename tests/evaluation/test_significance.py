"""The paired bootstrap agrees exactly with `sacrebleu --paired-bs` on the same files."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.evaluation.significance import paired_bootstrap

WORDS = "le la les de et à il que dans pour sur ne pas est avec ils dit par au se son".split()


def _corrupt(lines: list[str], rate: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) if rng.random() < rate else w for w in s.split()) for s in lines
    ]


@pytest.fixture
def systems() -> dict[str, list[str]]:
    rng = random.Random(7)
    ref = [" ".join(rng.choices(WORDS, k=rng.randint(3, 25))) for _ in range(40)]
    return {
        "ref": ref,
        "ref2": _corrupt(ref, 0.2, 1),
        "base": _corrupt(ref, 0.45, 2),
        "sys": _corrupt(ref, 0.35, 3),
    }


def _sacrebleu_cli(tmp_path: Path, systems: dict, refs: list[str], n: int) -> list[dict]:
    for name, lines in systems.items():
        (tmp_path / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SACREBLEU_SEED"}
    proc = subprocess.run(
        [sys.executable, "-m", "sacrebleu", *refs, "-i", "base", "sys", "-m", "bleu"]
        + ["--paired-bs", "--paired-bs-n", str(n), "-f", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


@pytest.mark.parametrize("refs", [["ref"], ["ref", "ref2"]])
def test_paired_bootstrap_equals_sacrebleu_cli(tmp_path, systems, refs):
    base_row, sys_row = _sacrebleu_cli(tmp_path, systems, refs, n=200)
    ours = paired_bootstrap(
        systems["base"], systems["sys"], [systems[r] for r in refs], n_samples=200
    )
    assert ours["baseline_bleu"] == base_row["BLEU"]["score"]
    assert ours["baseline_mean"] == base_row["BLEU"]["mean"]
    assert ours["baseline_ci"] == base_row["BLEU"]["ci"]
    assert ours["system_bleu"] == sys_row["BLEU"]["score"]
    assert ours["system_mean"] == sys_row["BLEU"]["mean"]
    assert ours["system_ci"] == sys_row["BLEU"]["ci"]
    assert ours["p_value"] == sys_row["BLEU"]["p_value"]
    assert f"nrefs:{len(refs)}" in ours["signature"] and "bs:200" in ours["signature"]


def test_seed_changes_the_resamples_and_env_is_restored(systems, monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "999")
    args = (systems["base"], systems["sys"], [systems["ref"]])
    first = paired_bootstrap(*args, n_samples=100, seed=1)
    assert paired_bootstrap(*args, n_samples=100, seed=1) == first
    other = paired_bootstrap(*args, n_samples=100, seed=2)
    assert other["system_mean"] != first["system_mean"]
    assert other["system_bleu"] == first["system_bleu"]  # the real scores do not resample
    assert os.environ["SACREBLEU_SEED"] == "999"


def test_hypotheses_must_be_line_aligned(systems):
    with pytest.raises(ValueError, match="40 baseline hypotheses but 39"):
        paired_bootstrap(systems["base"], systems["sys"][:-1], [systems["ref"]])
