"""The one exception users see as a one-line message (no traceback)."""

import signal


class NmtError(Exception):
    """Bad input or configuration: the message names the file, line or key at fault."""

    exit_code = 2


class RunInterruptedError(NmtError):
    """A run stopped by SIGINT or SIGTERM after saving where it was; exits 128 + the signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
        self.signal_name = signal.Signals(signum).name
