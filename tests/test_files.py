"""nmt.files: atomic writes, JSON that stays JSON, and paths that stay in their folder."""

import pytest

from nmt.errors import NmtError
from nmt.files import dumps, inside


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
