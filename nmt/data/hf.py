"""Hugging Face `datasets` sources: hub names, json/csv/parquet files, or `save_to_disk` folders.

Records are either the hub's translation shape, {"translation": {"en": ..., "fr": ...}}, or flat
columns named by `src_field` / `tgt_field`.
"""

from __future__ import annotations

from typing import Any

from nmt.data import Corpus, Split, normalize
from nmt.errors import NmtError


def open_dataset(path: str, name: str | None, data_files: Any, from_disk: bool) -> Any:
    import datasets

    try:
        if from_disk:
            return datasets.load_from_disk(path)
        return datasets.load_dataset(path, name, data_files=data_files)
    except (FileNotFoundError, ValueError, ConnectionError) as err:
        raise NmtError(f"data.corpus.path '{path}': {err}") from None


def columns(
    dataset: Any, src_lang: str, tgt_lang: str, src_field: str | None, tgt_field: str | None
) -> tuple[list[str], list[str]]:
    if src_field or tgt_field:
        for field in (src_field, tgt_field):
            if field not in dataset.column_names:
                raise NmtError(
                    f"data.corpus: no column '{field}' (columns: {', '.join(dataset.column_names)})"
                )
        return dataset[src_field], dataset[tgt_field]
    if "translation" not in dataset.column_names:
        raise NmtError(
            "data.corpus: records have no 'translation' field; set src_field and tgt_field "
            f"(columns: {', '.join(dataset.column_names)})"
        )
    pairs = dataset["translation"]
    for lang in (src_lang, tgt_lang):
        if pairs and lang not in pairs[0]:
            raise NmtError(f"data: no language '{lang}' in translation records ({list(pairs[0])})")
    return [p[src_lang] for p in pairs], [p[tgt_lang] for p in pairs]


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
    dataset = open_dataset(path, name, data_files, from_disk)
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
        src, tgt = columns(part, src_lang, tgt_lang, src_field, tgt_field)
        parts[ours] = Split([normalize(s) for s in src], [normalize(t) for t in tgt])
    return Corpus(**parts)
