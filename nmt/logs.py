"""The run directory's log file (configs/hydra/job_logging/nmt.yaml)."""

from __future__ import annotations

import logging
import sys


class RunLogHandler(logging.FileHandler):
    """logging.FileHandler for the run's log. A write that fails (a full or read-only disk) says
    so once, in one line on stderr, and the log goes on on the console alone; whether the run
    can go on is for its own files (checkpoints, metrics) to tell."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        try:
            super().emit(record)
        except OSError:  # opening the file (delayed to the first line) fails outside its try
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if self.failed:
            return
        self.failed = True
        err = sys.exc_info()[1]
        reason = getattr(err, "strerror", None) or err
        print(
            f"warning: {self.baseFilename}: {reason}; the log goes on on the console only",
            file=sys.stderr,
        )
