"""nmt.files: atomic writes, JSON that stays JSON, appended logs that survive a torn line, and
paths that stay in their folder."""

import logging

import pytest

from nmt.errors import NmtError
from nmt.files import append_jsonl, dumps, inside, read_jsonl


def test_non_finite_numbers_are_written_as_null():
    assert dumps({"a": float("nan"), "b": [float("inf"), 1.0]}) == '{"a": null, "b": [null, 1.0]}'


def test_a_path_must_stay_inside_its_folder_without_symbolic_links(tmp_path):
    folder = tmp_path / "records"
    (folder / "row").mkdir(parents=True)
    assert inside(folder / "row" / "x", folder, "w") == folder / "row" / "x"
    for climbing in (folder / ".." / "x", folder / "row" / ".." / ".." / "x"):
        with pytest.raises(NmtError, match="climbs out of"):
            inside(climbing, folder, "w")
    with pytest.raises(NmtError, match="lies outside"):
        inside(tmp_path / "elsewhere", folder, "w")
    (folder / "link").symlink_to(tmp_path)
    with pytest.raises(NmtError, match="is a symbolic link"):
        inside(folder / "link" / "x", folder, "w")


def test_a_torn_last_line_is_dropped_with_a_warning_and_cut_by_the_next_append(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2})
    with open(path, "ab") as f:
        f.write(b'{"step": 3, "dev_lo')  # a kill during the third append
    with caplog.at_level(logging.WARNING):
        assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
    assert f"{path}: its last line is cut short" in caplog.text
    append_jsonl(path, {"step": 3})
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'
    assert read_jsonl(tmp_path / "none.jsonl") == []


@pytest.mark.parametrize("bad", [b"{not json}", b"[1, 2]", b"\xff\xfe"])
def test_a_bad_line_before_the_last_names_the_file_and_line(tmp_path, bad):
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(b'{"a": 1}\n' + bad + b'\n{"a": 2}\n')
    with pytest.raises(NmtError, match=rf"{path}:2: not (valid JSON|a JSON object)"):
        read_jsonl(path)
