"""The ids every vocabulary reserves, and the content hash that names cached tokenizers and
encoded splits."""

from __future__ import annotations

import hashlib

UNK, BOS, EOS, PAD = 0, 1, 2, 3
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]  # the pieces of ids UNK, BOS, EOS, PAD


def fingerprint(*parts: str | bytes) -> str:
    """A SHA-256 over the parts, each ended by a NUL so that their boundaries count."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]
