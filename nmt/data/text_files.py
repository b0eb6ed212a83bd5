"""Parallel plain-text files, one sentence a line: {prefix}{split}.{lang}."""

from __future__ import annotations

from pathlib import Path

from nmt.data import Corpus, Split, normalize
from nmt.errors import NmtError

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, which some editors put at a file's start


def read_lines(path: Path) -> list[str]:
    """The file's lines, normalised; a byte-order mark at its start is not part of the text."""
    if not path.is_file():
        raise NmtError(f"{path}: no such file")
    lines = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1:
                raw = raw.removeprefix(BOM)
            try:
                lines.append(normalize(raw.decode("utf-8")))
            except UnicodeDecodeError as err:
                raise NmtError(
                    f"{path}:{number}: not UTF-8 text ({err.reason} at column {err.start + 1})"
                ) from None
    return lines


def load_split(prefix: str, name: str, src_lang: str, tgt_lang: str) -> Split:
    """One split from `{prefix}{name}.{lang}` files, line by line."""
    src_path, tgt_path = Path(f"{prefix}{name}.{src_lang}"), Path(f"{prefix}{name}.{tgt_lang}")
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise NmtError(f"{tgt_path}: {len(tgt)} lines, but {src_path} has {len(src)}")
    refs = []
    k = 1
    while (ref_path := Path(f"{tgt_path}.{k}")).is_file():
        ref = read_lines(ref_path)
        if len(ref) != len(tgt):
            raise NmtError(f"{ref_path}: {len(ref)} lines, but {tgt_path} has {len(tgt)}")
        refs.append(ref)
        k += 1
    return Split(src, tgt, refs)


def load_text_files(*, prefix: str, src_lang: str, tgt_lang: str, splits: dict[str, str]) -> Corpus:
    """Args:
    prefix: path prefix, e.g. `corpus/` for corpus/train.en, corpus/train.fr, ...
    splits: file stem of each split, e.g. {train: train, dev: valid, test: test}.
    """
    parts = {name: load_split(prefix, splits[name], src_lang, tgt_lang) for name in splits}
    return Corpus(**parts)
