"""nmt-evaluate end to end on the toy model: another split and other data, with beam search; a
directory of its own, never a training run's."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from nmt.resolvers import _fresh_dir


def hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_evaluate_another_split_and_data_with_beam(learned_run, run_cli, tmp_path):
    run_dir, _ = learned_run
    run_cli(
        "evaluate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "split=dev",
        "data=toy_reverse",
        "data.corpus.n_dev=15",
        "decode=beam",
        "decode.beam_size=3",
        f"hydra.run.dir={tmp_path}/eval",
    )
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["split"] == "dev" and results["decode"]["beam_size"] == 3
    assert len((tmp_path / "eval" / "dev.hyp").read_text().splitlines()) == 15
    assert results["bleu"] > 50
    assert not (run_dir / "dev.hyp").exists()  # nothing written into the training run


def test_evaluate_refuses_a_directory_that_holds_a_run_and_changes_nothing(
    learned_run, run_cli, tmp_path
):
    run_dir, _ = learned_run
    before = hashes(run_dir)
    refused = run_cli(
        "evaluate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "data=toy_reverse",
        "data.corpus.n_test=5",
        f"hydra.run.dir={run_dir}",
        check=False,
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={run_dir}: holds a run already; nmt-evaluate writes into a "
        "directory of its own"
    )
    assert hashes(run_dir) == before  # not a file changed, added or removed


def test_two_evaluations_started_together_get_a_directory_each(learned_run, cache_dir, tmp_path):
    run_dir, _ = learned_run
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    command = [sys.executable, "-m", "nmt.evaluate", f"checkpoint={run_dir}/checkpoints/best.pt"]
    procs = [
        subprocess.Popen(
            [
                *command,
                f"split={split}",
                "data=toy_reverse",
                "data.corpus.n_dev=5",
                "data.corpus.n_test=5",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for split in ("dev", "test")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    results = sorted((tmp_path / "outputs" / "evaluate").glob("*/*/results.json"))
    assert sorted(json.loads(r.read_text())["split"] for r in results) == ["dev", "test"]


def test_a_directory_named_by_the_second_is_claimed_once(tmp_path):
    default = str(tmp_path / "evaluate" / "12-00-00")
    first, second = _fresh_dir.__wrapped__(default), _fresh_dir.__wrapped__(default)
    assert (first, second) == (default, f"{default}-2")
