"""nmt: RNN sequence-to-sequence translation with pluggable attention."""

__version__ = "0.1.0"
