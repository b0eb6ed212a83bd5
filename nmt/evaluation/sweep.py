"""The end of an `nmt-train -m` sweep: with `sweep_report=true`, `nmt-report` over its runs.

A Hydra callback (configs/train.yaml registers it as `hydra.callbacks.sweep_report`), so it runs
once in the process that launched the sweep, whichever launcher ran the jobs (basic, joblib,
submitit), after every job has finished.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nmt.errors import NmtError

log = logging.getLogger(__name__)


class SweepReport(Callback):
    """Write SWEEP_DIR/report (report.md, report.html, PNGs) when the sweep ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("sweep_report"):
            return
        from nmt.evaluation.report import write_report

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            written = write_report(entries=[str(sweep_dir)], out=sweep_dir / "report")
        except NmtError as err:  # e.g. no job finished: the sweep's own results stand
            log.error("sweep_report: %s", err)
            return
        log.info("sweep report: %s", written[0])
