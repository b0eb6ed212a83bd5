"""`nmt-report runs=[DIR,...] [out=DIR] [baseline=NAME]`: compare finished runs
(nmt.evaluation.report) and print the paths of what it wrote."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from nmt.cli.common import cli, entry_point, require
from nmt.config import CONFIG_DIR
from nmt.errors import NmtError
from nmt.evaluation.report import write_report


@entry_point
@hydra.main(config_path=CONFIG_DIR, config_name="report", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    """`nmt-report runs=[DIR,...]`: compare the runs' variants in one report."""
    require(cfg, "runs", "runs=[DIR,...]")
    entries = [cfg.runs] if isinstance(cfg.runs, str) else [str(e) for e in cfg.runs]
    if not entries:
        raise NmtError("runs: give at least one run or multirun directory")
    written = write_report(
        entries=entries,
        out=Path(cfg.out),
        baseline=None if cfg.baseline is None else str(cfg.baseline),
        n_samples=int(cfg.bootstrap_samples),
    )
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
