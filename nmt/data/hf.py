"""Hugging Face `datasets` sources: hub names, json/csv/parquet files, or `save_to_disk` folders.

Records are either the hub's translation shape, {"translation": {"en": ..., "fr": ...}}, or flat
columns named by `src_field` / `tgt_field`.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from nmt.data import Corpus, Split, normalize
from nmt.errors import NmtError


def open_dataset(path: str, name: str | None, data_files: Any, from_disk: bool) -> Any:
    """`datasets.load_dataset` (or `load_from_disk`) with plain Python arguments."""
    import datasets

    if OmegaConf.is_config(data_files):  # from the command line: datasets wants plain dicts
        data_files = OmegaConf.to_container(data_files, resolve=True)
    try:
        if from_disk:
            return datasets.load_from_disk(path)
        return datasets.load_dataset(path, name, data_files=data_files)
    except (FileNotFoundError, ValueError, ConnectionError) as err:
        raise NmtError(f"data.corpus.path '{path}': {err}") from None


def columns(
    dataset: Any, src_lang: str, tgt_lang: str, src_field: str | None, tgt_field: str | None
) -> tuple[list[str], list[str]]:
    """A split's source and target sentences, from a translation column or two named fields."""
    if src_field or tgt_field:
        for field in (src_field, tgt_field):
            if field not in dataset.column_names:
                raise NmtError(f"no column '{field}' (columns: {', '.join(dataset.column_names)})")
        return no_nulls(dataset[src_field], src_field), no_nulls(dataset[tgt_field], tgt_field)
    if "translation" not in dataset.column_names:
        raise NmtError(
            "records have no 'translation' field; set data.corpus.src_field and tgt_field "
            f"(columns: {', '.join(dataset.column_names)})"
        )
    pairs = dataset["translation"]
    for lang in (src_lang, tgt_lang):
        for number, pair in enumerate(pairs, start=1):
            if not isinstance(pair, dict) or lang not in pair:
                found = list(pair) if isinstance(pair, dict) else pair
                raise NmtError(
                    f"record {number}: no language '{lang}' in its translation ({found})"
                )
    src = no_nulls([p[src_lang] for p in pairs], f"translation.{src_lang}")
    return src, no_nulls([p[tgt_lang] for p in pairs], f"translation.{tgt_lang}")


def no_nulls(values: list, field: str) -> list[str]:
    """The values, each a string; a null or other value is an error naming its record."""
    for number, value in enumerate(values, start=1):
        if not isinstance(value, str):
            raise NmtError(f"record {number}: '{field}' is {value!r}, not text")
    return values


def load_hf(
    *,
    path: str,
    name: str | None,
    data_files: dict[str, str] | None,
    from_disk: bool,
    splits: dict[str, str],
    src_lang: str,
    tgt_lang: str,
    src_field: str | None = None,
    tgt_field: str | None = None,
    max_train: int | None = None,
) -> Corpus:
    """A corpus from a hub dataset, local data files or a saved dataset folder."""
    dataset = open_dataset(path, name, data_files, from_disk)

    def has_file(split: str) -> bool:
        return bool(data_files) and split in data_files

    parts = {}
    for ours, theirs in splits.items():
        if theirs not in dataset:
            raise NmtError(
                f"data.corpus.splits.{ours}: no split '{theirs}' in {path} "
                f"(splits: {', '.join(dataset)})"
            )
        part = dataset[theirs]
        if ours == "train" and max_train is not None:
            part = part.select(range(min(max_train, len(part))))
        try:
            src, tgt = columns(part, src_lang, tgt_lang, src_field, tgt_field)
        except NmtError as err:  # name the split and its file
            where = f" ({data_files[theirs]})" if has_file(theirs) else ""
            raise NmtError(f"data.corpus, split '{theirs}'{where}: {err}") from None
        parts[ours] = Split([normalize(s) for s in src], [normalize(t) for t in tgt])
    return Corpus(**parts)
