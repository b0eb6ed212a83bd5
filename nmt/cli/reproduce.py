"""`nmt-reproduce paper=NAME [scale=cpu] [seeds=N] [out=DIR]`: run a paper's rows, then report
(nmt.papers.reproduction)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nmt.cli.common import cli, entry_point
from nmt.config import CONFIG_DIR, strings, whole
from nmt.papers.reproduction import Reproduction, reproduce
from nmt.papers.runner import auto_parallel
from nmt.trust import allowed_modules


@entry_point
@hydra.main(config_path=CONFIG_DIR, config_name="reproduce", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    """`nmt-reproduce paper=NAME`: the config as a `Reproduction`, then `reproduce`."""
    reproduction = Reproduction(
        paper=cfg.paper,
        scale=HydraConfig.get().runtime.choices["scale"],
        seeds=whole(cfg, "seeds", 1),
        out=Path(cfg.out),
        records=Path(cfg.records),
        report_dir=Path(cfg.report_dir),
        extra=strings(cfg, "train_overrides"),
        allow=allowed_modules(strings(cfg, "allow_targets")),
        lenders=[Path(d) for d in strings(cfg, "borrow")],
        parallel=auto_parallel() if cfg.jobs == "auto" else whole(cfg, "jobs", 1),
        samples=whole(cfg, "bootstrap_samples", 1),
    )
    report, claims = reproduce(reproduction, report_only=bool(cfg.report_only))
    print(f"report: {report}")
    print(claims)


if __name__ == "__main__":
    main()
