"""SIGINT and SIGTERM while a run works: training finishes its step, saves `last.pt` and exits
with one line on how to resume; anywhere else the run stops at once with that line. A second
Ctrl-C exits at once. Clusters send SIGTERM before they kill a job, so a preempted job resumes
where it was."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from nmt.errors import RunInterruptedError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """What the handlers saw: `signum` once a signal came; `training` while the loop is in a
    step, where the signal only asks it to stop after the step."""

    def __init__(self, where: str) -> None:
        self.signum: int | None = None
        self.training = False
        self.where = where  # what the run was doing, for the message

    @property
    def name(self) -> str:
        return "" if self.signum is None else signal.Signals(self.signum).name


@contextmanager
def stop_requests(where: str) -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM in the block (main thread only), restoring the old handlers.

    Args:
        where: the message's tail when a signal stops the run outside a training step, e.g.
            "before its first checkpoint".
    """
    request = StopRequest(where)

    def handle(signum: int, frame: object) -> None:
        if request.signum == signal.SIGINT and signum == signal.SIGINT:
            os._exit(128 + signum)  # a second Ctrl-C: at once, saving nothing more
        request.signum = request.signum or signum
        if not request.training:
            raise RunInterruptedError(f"interrupted by {request.name} {request.where}", signum)

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
