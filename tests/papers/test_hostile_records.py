"""Records and paper files are data from someone else: a name in a record that climbs out of
its folder or is absolute, a symbolic link, a record whose saved config names code outside nmt,
and a paper row id or override that reaches outside out= are each refused in one line before
anything is read, copied or deleted, and nothing outside the folders changes."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nmt.config import CONFIG_DIR
from nmt.errors import NmtError
from nmt.papers.plan import Job, plan
from nmt.papers.records import borrow, restore

OVERRIDES = ("experiment=a", "trainer.max_steps=8", "seed=1")


def write_record(records: Path, row: str = "row_a", shared: dict | None = None) -> Path:
    """A complete record of seed 1 as nmt.papers.records.save writes it, its shared files
    named by `shared` (name -> content) under their SHA-256."""
    record = records / row / "seed1"
    (record / ".hydra").mkdir(parents=True)
    (record / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(list(OVERRIDES)))
    (record / ".hydra" / "config.yaml").write_text("seed: 1\nmodel: {emb_size: 8}\n")
    (record / "results.json").write_text(json.dumps({"bleu": 1.0}))
    (record / "metrics.jsonl").write_text("")
    (record / "test.hyp").write_text("a hypothesis\n")
    (record / "sittings.jsonl").write_text("")
    (records / "shared").mkdir(exist_ok=True)
    names = {}
    for name, content in (shared or {"test.src": "a source\n"}).items():
        digest = hashlib.sha256(content.encode()).hexdigest()
        (records / "shared" / digest).write_text(content)
        names[name] = digest
    (record / "shared.json").write_text(json.dumps(names))
    return record


@pytest.fixture
def place(tmp_path) -> dict:
    """out=, the records, and a private file and a victim directory outside both."""
    private = tmp_path / "private.txt"
    private.write_text("a secret\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep me\n")
    out = tmp_path / "reproduction" / "out"
    out.mkdir(parents=True)
    return {"out": out, "records": tmp_path / "records", "private": private, "victim": victim}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def job(place: dict) -> Job:
    return Job("row_a", "A", 1, place["out"] / "row_a" / "seed1", OVERRIDES)


@pytest.mark.parametrize("name", ["../../x", "../seed2/results.json", "test.src/../../x"])
def test_a_shared_name_that_climbs_out_is_refused(place, name):
    write_record(place["records"], shared={name: "planted\n"})
    outside = place["out"].parent.parent
    before = snapshot(outside)
    with pytest.raises(NmtError, match="is not the name of a shared test file"):
        restore(job(place), place["out"], place["records"])
    assert not job(place).directory.exists()
    assert {k: v for k, v in snapshot(outside).items() if not k.startswith("records")} == {
        k: v for k, v in before.items() if not k.startswith("records")
    }


def test_an_absolute_shared_name_through_borrow_is_refused(place, tmp_path):
    target = tmp_path / "planted.txt"
    lender = tmp_path / "lender"
    write_record(lender, shared={str(target): "planted\n"})
    with pytest.raises(NmtError, match="is not the name of a shared test file"):
        borrow(job(place), place["out"], [lender])
    assert not target.exists() and not job(place).directory.exists()


def test_a_symlinked_file_in_a_record_is_refused(place):
    record = write_record(place["records"])
    (record / "test.hyp").unlink()
    (record / "test.hyp").symlink_to(place["private"])
    with pytest.raises(NmtError, match="test.hyp is a symbolic link; refused"):
        restore(job(place), place["out"], place["records"])
    assert "a secret" not in "".join(p.read_text() for p in place["out"].rglob("*") if p.is_file())
    assert not job(place).directory.exists()


def test_a_symlinked_record_directory_and_shared_file_are_refused(place, tmp_path):
    elsewhere = write_record(tmp_path / "elsewhere")
    (place["records"]).mkdir()
    (place["records"] / "row_a").symlink_to(elsewhere.parent)
    with pytest.raises(NmtError, match="symbolic link"):
        restore(job(place), place["out"], place["records"])
    records = tmp_path / "records2"
    write_record(records)
    [stored] = (records / "shared").iterdir()
    stored.unlink()
    stored.symlink_to(place["private"])
    with pytest.raises(NmtError, match="symbolic link"):
        restore(job(place), place["out"], records)
    assert not job(place).directory.exists()


def test_a_record_whose_config_names_code_is_refused(place):
    record = write_record(place["records"])
    hostile = (
        f"model:\n  attention:\n    _target_: os.system\n    command: touch {place['private']}x\n"
    )
    (record / ".hydra" / "config.yaml").write_text(hostile)
    with pytest.raises(NmtError, match=r"model.attention._target_' names 'os.system'"):
        restore(job(place), place["out"], place["records"])
    assert not job(place).directory.exists()


def test_an_honest_record_is_restored(place):
    write_record(place["records"])
    assert restore(job(place), place["out"], place["records"])
    assert (job(place).directory / "test.src").read_text() == "a source\n"
    assert (job(place).directory / "test.hyp").read_text() == "a hypothesis\n"


def paper(**row_changes) -> OmegaConf:
    """Bahdanau's paper file with its first row changed; a new id is renamed wherever the file
    names the row, so that the file stays consistent."""
    text = (Path(CONFIG_DIR) / "paper" / "bahdanau14.yaml").read_text()
    first = OmegaConf.create(text).rows[0].id
    if "id" in row_changes:
        text = re.sub(rf"\b{first}\b", "FIRST_ROW", text)
    spec = OmegaConf.create(text)
    for key, value in row_changes.items():
        OmegaConf.update(spec, f"rows.0.{key}", value, merge=False)
    if "id" in row_changes:
        spec = OmegaConf.create(OmegaConf.to_yaml(spec).replace("FIRST_ROW", row_changes["id"]))
    return spec


@pytest.mark.parametrize("row_id", ["../victim", "/tmp/victim", "a/b", ".."])
def test_a_row_id_that_is_not_a_plain_name_is_refused(row_id, tmp_path):
    with pytest.raises(NmtError, match="row id .* is refused"):
        plan(paper(id=row_id), "cpu", 1, tmp_path / "out", [])


@pytest.mark.parametrize(
    "override",
    [
        "hydra.run.dir=/tmp/elsewhere",
        "model.attention._target_=os.system",
        "+model.x._args_=[1]",
        "seed=7",
        "resume=/tmp/run",
    ],
)
def test_a_paper_override_that_decides_where_or_what_code_runs_is_refused(override, tmp_path):
    with pytest.raises(NmtError, match="is refused"):
        plan(paper(overrides={"cpu": [override]}), "cpu", 1, tmp_path / "out", [])


def test_a_row_experiment_that_is_not_a_plain_name_is_refused(tmp_path):
    with pytest.raises(NmtError, match="experiment '../../train' is refused"):
        plan(paper(experiment="../../train"), "cpu", 1, tmp_path / "out", [])


def test_nmt_reproduce_refuses_a_paper_row_that_climbs_out_of_out(place, tmp_path, cache_dir):
    """The victim directory holds an unfinished job (a directory without a checkpoint), which
    nmt-reproduce deletes before training; the row that points there is refused first."""
    (place["victim"] / "seed1").mkdir()
    configs = tmp_path / "configs" / "paper"
    configs.mkdir(parents=True)
    spec = paper(id="../../victim")
    spec.name = "evil"
    OmegaConf.save(spec, configs / "evil.yaml")
    before = snapshot(place["victim"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.reproduce",
            "paper=evil",
            "seeds=1",
            f"out={place['out']}",
            f"hydra.searchpath=[file://{tmp_path / 'configs'}]",
        ],
        env=os.environ | {"NMT_CACHE_DIR": str(cache_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "row id '../../victim' is refused" in errors[0]
    assert "Traceback" not in proc.stderr
    assert (place["victim"] / "seed1").is_dir() and snapshot(place["victim"]) == before
