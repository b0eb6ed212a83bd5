"""glibc malloc settings for training on CPU.

Training allocates and frees tensors of tens of megabytes at every step (gradient buffers of the
packed encoder, the output layer's logits). glibc serves those with fresh mmap'd pages and hands
them back on free, so each step pays page faults zero-filling new memory. Raising the mmap
threshold and never trimming the heap keeps those pages in the process for reuse, for a little
more resident memory (docs/performance.md has the measured trade).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Apply the settings where the C library is glibc; returns whether they took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 256 << 20}
    applied = all(mallopt(key, value) == 1 for key, value in settings.items())
    log.debug("malloc settings %s", "applied" if applied else "refused")
    return applied
