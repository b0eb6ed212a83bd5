"""nmt: RNN sequence-to-sequence translation with pluggable attention.

The Python API is `nmt.Translator` (nmt.decoding.translator); `import nmt` alone loads no torch.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Translator"]


def __getattr__(name: str) -> Any:
    if name == "Translator":
        from nmt.decoding.translator import Translator

        return Translator
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
