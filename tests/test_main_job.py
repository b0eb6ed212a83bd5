"""The README's main job, end to end (about 11 minutes on 2 cores: slow, not run by CI)."""

import json

import pytest


@pytest.mark.slow
def test_default_main_job_learns(run_cli, tmp_path):
    proc = run_cli("train", cwd=tmp_path, script=True, timeout=1800)
    assert "test BLEU" in proc.stdout
    (results,) = (tmp_path / "outputs" / "runs").glob("*/*/results.json")
    scores = json.loads(results.read_text())
    assert scores["bleu"] >= 5
    assert scores["bleu_multi_ref"] > scores["bleu"]
    assert len(list((results.parent / "attention").glob("*.png"))) == 4
