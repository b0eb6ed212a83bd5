"""Sweeps through Hydra's launchers: submitit's local executor (the SLURM code path on this
machine, also with a 2-rank DDP job) and joblib, and the report callback at a sweep's end."""

import json

import pytest
from hydra import compose, initialize_config_dir
from toys import TINY

from nmt.config import CONFIG_DIR

SWEEP = [*TINY, "model/attention=none,bahdanau"]
SUBMITIT = ["hydra.launcher.timeout_min=5"]  # a stuck job must not outlive the test for long


def bleus(sweep_dir, jobs: int) -> list[float]:
    return [
        json.loads((sweep_dir / str(k) / "results.json").read_text())["bleu"] for k in range(jobs)
    ]


def test_a_submitit_local_sweep_ends_with_its_report(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        *SUBMITIT,
        *SWEEP,
        "sweep_report=true",
        f"hydra.sweep.dir={sweep}",
    )
    assert len(bleus(sweep, 2)) == 2
    report = (sweep / "report" / "report.md").read_text()
    assert "model/attention=none" in report and "model/attention=bahdanau" in report


@pytest.mark.slow  # CI keeps the submitit sweeps
def test_a_joblib_sweep_runs_its_jobs_side_by_side(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("train", "-m", "hydra/launcher=nmt_joblib", *SWEEP, f"hydra.sweep.dir={sweep}")
    assert len(bleus(sweep, 2)) == 2
    assert not (sweep / "report").exists()  # sweep_report is off by default


def test_a_ddp_job_takes_its_ranks_from_submitit(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "train",
        "-m",
        "hydra/launcher=nmt_local",
        *SUBMITIT,
        *TINY,
        "trainer.devices=2",
        f"hydra.sweep.dir={sweep}",
    )
    job = sweep / "0"
    assert (job / "results.json").is_file() and (job / "train.rank1.log").is_file()
    assert "off under DistributedDataParallel (2 ranks)" in (job / "train.log").read_text()


def test_the_slurm_preset_gives_each_job_trainer_devices_tasks():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=nmt_slurm", "trainer.devices=4"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher.tasks_per_node == 4
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
