"""The one exception users see as a one-line message (no traceback)."""


class NmtError(Exception):
    """Bad input or configuration: the message names the file, line or key at fault."""
