import pytest
import torch

from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.errors import NmtError


def test_round_trip_with_weights_only(tmp_path):
    payload = {
        "model": {"w": torch.randn(3, 4)},
        "step": 7,
        "tokenizer": {"src": b"\x00\x01"},
        "config": {"seed": 1, "model": {"hidden_size": 8}},
    }
    save_checkpoint(tmp_path / "last.pt", payload)
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(loaded["model"]["w"], payload["model"]["w"])
    assert loaded["step"] == 7 and loaded["tokenizer"]["src"] == b"\x00\x01"
    assert loaded["config"] == payload["config"]


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "last.pt", {"step": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(NmtError, match="last.pt: cannot write it \\(disk full\\)"):
        save_checkpoint(tmp_path / "last.pt", {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_full_disk_is_named_as_such(tmp_path, monkeypatch):
    """torch reports a full disk as 'unexpected pos'; the error says what happened."""
    import shutil

    def full(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(9, 9, 0))
    with pytest.raises(NmtError, match="cannot write it \\(no space left on device: 0 MiB free\\)"):
        save_checkpoint(tmp_path / "last.pt", {"step": 2})
    assert list(tmp_path.iterdir()) == []


def test_unreadable_or_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(NmtError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NmtError, match="junk.pt: not a readable nmt checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(NmtError, match="not an nmt checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": 1, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(NmtError, match="not a readable") as refused:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only=False" not in str(refused.value)  # no advice to unpickle it
