"""Unknown-word replacement (Luong et al. 2015b; Jean et al. 2015; Luong 2015's "+unk replace"):
each <unk> of the output becomes the source word it attends to most, or that word's translation
in a dictionary."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from nmt.errors import NmtError

UNK_TOKEN = "<unk>"


def load_dictionary(path: str | Path) -> dict[str, str]:
    """A file of `source<TAB>target` lines (the first translation of a word wins)."""
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"decode.unk_dict {path}: no such file")
    dictionary: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or not all(parts):
                raise NmtError(f"{path}:{number}: expected 'source<TAB>target'")
            dictionary.setdefault(parts[0], parts[1])
    return dictionary


def replace_unks(
    tokens: list[str], attention: Tensor, src_tokens: list[str], dictionary: dict[str, str]
) -> list[str]:
    """Replace each <unk> of `tokens` through its attention's arg-max source word.

    Args:
        tokens: output tokens (no <s>/</s>).
        attention: (len(tokens) + 1, S') weights of each output step over the source positions.
        src_tokens: the source tokens behind those positions, ending in </s> (never chosen).
    """
    words = len(src_tokens) - 1  # the final </s> aligns to no word
    out = []
    for i, token in enumerate(tokens):
        if token != UNK_TOKEN or words < 1:
            out.append(token)
            continue
        source = src_tokens[int(attention[i, :words].argmax())]
        out.append(dictionary.get(source, source))
    return out
