"""The README's main job, end to end (about 11 minutes on 2 cores: slow, not run by CI)."""

import json
import os
import shutil
import subprocess

import pytest


@pytest.mark.slow
def test_default_main_job_learns(tmp_path, cache_dir):
    exe = shutil.which("nmt-train")
    if exe is None:
        pytest.skip("nmt-train is not installed on PATH")
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [exe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test BLEU" in proc.stdout
    (results,) = (tmp_path / "outputs" / "runs").glob("*/*/results.json")
    scores = json.loads(results.read_text())
    assert scores["bleu"] >= 5
    assert scores["bleu_multi_ref"] > scores["bleu"]
    assert len(list((results.parent / "attention").glob("*.png"))) == 4
