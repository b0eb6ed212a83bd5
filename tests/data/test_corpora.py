from pathlib import Path

import pytest

from nmt.data import Split, filter_by_length, n_words
from nmt.data.bible import load_bible
from nmt.data.hf import load_hf
from nmt.data.text_files import load_text_files
from nmt.errors import NmtError

DEV, TEST = [8, 32, 50], [7, 27, 43]


@pytest.fixture(scope="module")
def bible():
    return load_bible(src="4", tgt="l", extra_refs=["o", "5"], dev_books=DEV, test_books=TEST)


def test_bible_split_sizes_match_design(bible):
    assert len(bible.dev) == 237
    assert len(bible.test) == 1854
    assert sum(n_words(s) >= 50 for s in bible.test.src) == 60
    assert len(bible.test.refs) == 2 and all(len(r) == 1854 for r in bible.test.refs)


def test_bible_split_is_by_book_and_train_never_sees_held_out_sources(bible):
    import sqlite3

    from nmt.data.bible import bible_db_path

    con = sqlite3.connect(bible_db_path())
    books: dict[str, set[int]] = {}
    for b, text in con.execute("SELECT bNumber, vText FROM bible WHERE bbName = '4'"):
        books.setdefault(" ".join(text.split()), set()).add(b)
    con.close()
    train_books = set(range(1, 67)) - set(DEV) - set(TEST)
    assert all(books[s] & train_books for s in bible.train.src)
    assert all(books[s] & set(DEV) for s in bible.dev.src)
    assert all(books[s] & set(TEST) for s in bible.test.src)
    held_out = set(bible.dev.src) | set(bible.test.src)
    assert held_out.isdisjoint(bible.train.src)
    # some verses recur word for word across books: those were removed from train, not kept
    assert any(books[s] & train_books for s in held_out)


def test_bible_train_excludes_book_of_john_and_keeps_genesis(bible):
    john_1_1 = "In the beginning was the Word, and the Word was with God, and the Word was God."
    assert john_1_1 in bible.test.src
    assert john_1_1 not in bible.train.src
    assert any(s.startswith("In the beginning God created") for s in bible.train.src)


def test_bible_unknown_translation_code_is_a_clear_error():
    with pytest.raises(NmtError, match="no translation 'Q'"):
        load_bible(src="4", tgt="Q", extra_refs=[], dev_books=DEV, test_books=TEST)


def test_length_filter_counts_words_on_both_sides():
    split = Split(["a b c", "a", "a b"], ["x", "x y z w", "x y"])
    kept = filter_by_length(split, 2)
    assert kept.src == ["a b"] and kept.tgt == ["x y"]


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_text_files_reads_splits_and_extra_references(tmp_path):
    for split in ("train", "dev", "test"):
        write(tmp_path / f"{split}.en", ["hello  world", "good day"])
        write(tmp_path / f"{split}.fr", ["bonjour le monde", "bonne journée"])
    write(tmp_path / "test.fr.1", ["salut le monde", "bonjour"])
    corpus = load_text_files(
        prefix=f"{tmp_path}/",
        src_lang="en",
        tgt_lang="fr",
        splits={"train": "train", "dev": "dev", "test": "test"},
    )
    assert corpus.train.src == ["hello world", "good day"]  # whitespace normalised
    assert corpus.test.refs == [["salut le monde", "bonjour"]]
    assert corpus.dev.refs == []


def test_text_files_misaligned_files_name_the_file(tmp_path):
    write(tmp_path / "train.en", ["a", "b"])
    write(tmp_path / "train.fr", ["a"])
    with pytest.raises(NmtError, match=r"train\.fr: 1 lines, but .*train\.en has 2"):
        load_text_files(
            prefix=f"{tmp_path}/", src_lang="en", tgt_lang="fr", splits={"train": "train"}
        )


HUB_RECORDS = {
    "train": [{"translation": {"en": f"sentence {i}", "fr": f"phrase {i}"}} for i in range(5)],
    "validation": [{"translation": {"en": "dev one", "fr": "dév un"}}],
    "test": [{"translation": {"en": "test one", "fr": "essai un"}}],
}


@pytest.fixture
def hub_like_json(tmp_path):
    """Local json files shaped like the hub's translation datasets (wmt14, iwslt)."""
    import json

    files = {}
    for split, records in HUB_RECORDS.items():
        files[split] = str(tmp_path / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in records))
    return files


def test_hf_loads_translation_records_from_json(hub_like_json):
    corpus = load_hf(
        path="json",
        name=None,
        data_files=hub_like_json,
        from_disk=False,
        splits={"train": "train", "dev": "validation", "test": "test"},
        src_lang="en",
        tgt_lang="fr",
        max_train=3,
    )
    assert corpus.train.src == ["sentence 0", "sentence 1", "sentence 2"]
    assert corpus.dev.tgt == ["dév un"]
    assert corpus.test.src == ["test one"]


def test_hf_loads_a_saved_dataset_dict(tmp_path):
    import datasets

    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in HUB_RECORDS.items()})
    dd.save_to_disk(str(tmp_path / "saved"))
    corpus = load_hf(
        path=str(tmp_path / "saved"),
        name=None,
        data_files=None,
        from_disk=True,
        splits={"train": "train", "dev": "validation", "test": "test"},
        src_lang="en",
        tgt_lang="fr",
    )
    assert len(corpus.train) == 5 and corpus.test.tgt == ["essai un"]


def test_hf_missing_split_and_language_are_named(hub_like_json):
    with pytest.raises(NmtError, match="no split 'dev'"):
        load_hf(
            path="json",
            name=None,
            data_files=hub_like_json,
            from_disk=False,
            splits={"train": "dev"},
            src_lang="en",
            tgt_lang="fr",
        )
    with pytest.raises(NmtError, match="no language 'de'"):
        load_hf(
            path="json",
            name=None,
            data_files=hub_like_json,
            from_disk=False,
            splits={"train": "train"},
            src_lang="en",
            tgt_lang="de",
        )


def test_hf_presets_compose_to_hub_names():
    from hydra import compose, initialize_config_dir

    from nmt.config import CONFIG_DIR

    expected = {
        "hf_wmt14_en_fr": ("wmt14", "fr-en", "fr"),
        "hf_wmt14_en_de": ("wmt14", "de-en", "de"),
        "hf_iwslt15_en_vi": ("mt_eng_vietnamese", "iwslt2015-en-vi", "vi"),
    }
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for name, (path, config, tgt) in expected.items():
            cfg = compose("train", overrides=[f"data={name}"])
            assert (cfg.data.corpus.path, cfg.data.corpus.name) == (path, config)
            assert cfg.data.corpus.tgt_lang == tgt and cfg.data.corpus.src_lang == "en"


def test_invalid_utf8_names_its_file_and_line(tmp_path):
    from nmt.data.text_files import read_lines
    from nmt.errors import NmtError

    path = tmp_path / "train.en"
    path.write_bytes(b"fine\n" * 5000 + b"caf\xe9\n")
    with pytest.raises(NmtError, match=r"train.en:5001: not UTF-8 text \(.* at column 4\)"):
        read_lines(path)


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    from nmt.data.text_files import read_lines

    path = tmp_path / "train.en"
    path.write_bytes(b"\xef\xbb\xbfIn the beginning\nGod created\n")
    assert read_lines(path) == ["In the beginning", "God created"]


def test_the_readme_local_files_example_runs_from_the_command_line(run_cli, tmp_path):
    """data=hf on local json files as the README writes it, through the config the command line
    builds; a record with a null side names its split, file and record."""
    import json

    from toys import TINY

    records = {
        "train": [
            {"translation": {"en": f"w{i} w{i + 1}", "fr": f"m{i + 1} m{i}"}} for i in range(80)
        ],
        "validation": [{"translation": {"en": "w1 w2", "fr": "m2 m1"}}],
        "test": [{"translation": {"en": "w3 w4", "fr": "m4 m3"}}],
    }
    files = {}
    for split, rows in records.items():
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = [
        "data=hf",
        "data.corpus.path=json",
        "data.corpus.data_files={"
        + ", ".join(f"{split}: {path}" for split, path in files.items())
        + "}",
        "data.src_lang=en",
        "data.tgt_lang=fr",
    ]
    tiny = [o for o in TINY if not o.startswith("data")] + ["trainer.max_steps=4"]
    run_cli("train", *tiny, *data, "trainer.valid_every=2", f"hydra.run.dir={tmp_path}/run")
    assert (tmp_path / "run" / "results.json").is_file()

    rows = records["train"]
    rows[6]["translation"]["fr"] = None
    files["train"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("train", *tiny, *data, f"hydra.run.dir={tmp_path}/bad", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: data.corpus, split 'train' ({files['train']}): record 7: 'translation.fr' is "
        "None, not text"
    )
