"""Borrowing a run from another reproduction's records: only a record of the very same overrides
and seed is copied, whole, marked as that run, with its sittings under the borrowing row."""

import hashlib
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nmt.config import CONFIG_DIR
from nmt.errors import NmtError
from nmt.papers.plan import Job, plan
from nmt.papers.provenance import JOBS_LOG, job_times
from nmt.papers.records import SAME_RUN, borrow


def write_record(records: Path, row: str, seed: int, overrides: list[str], bleu: float) -> Path:
    """A minimal record as nmt.papers.records.save writes it (one shared test file)."""
    record = records / row / f"seed{seed}"
    (record / ".hydra").mkdir(parents=True)
    (record / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    (record / "results.json").write_text(json.dumps({"bleu": bleu}))
    (records / "shared").mkdir(exist_ok=True)
    digest = hashlib.sha256(b"a source\n").hexdigest()
    (records / "shared" / digest).write_text("a source\n")
    (record / "shared.json").write_text(json.dumps({"test.src": digest}))
    sitting = {"row": row, "seed": seed, "wall_s": 60.0, "exit": 0, "commit": "abc"}
    (record / "sittings.jsonl").write_text(json.dumps(sitting) + "\n")
    return record


def test_a_record_of_the_same_overrides_is_copied_and_marked(tmp_path):
    lender = tmp_path / "lender"
    same = ("experiment=a", "trainer.max_steps=8", "seed=2")
    write_record(lender, "other_row", 2, ["experiment=b", "trainer.max_steps=8", "seed=2"], 1.0)
    write_record(lender, "row_a", 1, ["experiment=a", "trainer.max_steps=8", "seed=1"], 2.0)
    source = write_record(lender, "row_a", 2, list(same), 3.0)
    out = tmp_path / "out"
    out.mkdir()
    job = Job("a4", "A", 2, out / "a4" / "seed2", same)

    assert borrow(job, out, [lender]) == source
    assert job.status() == "done"
    assert json.loads((job.directory / "results.json").read_text())["bleu"] == 3.0
    assert (job.directory / "test.src").read_text() == "a source\n"
    assert json.loads((job.directory / SAME_RUN).read_text()) == {"record": str(source)}
    assert job_times(out)[("a4", 2)]["wall_s"] == 60.0  # the sitting, under this row
    # an existing directory is never replaced
    assert borrow(job, out, [lender]) is None
    other = Job("a4", "A", 3, out / "a4" / "seed3", (*same[:2], "seed=3"))
    assert borrow(other, out, [lender]) is None and not other.directory.exists()
    assert len((out / JOBS_LOG).read_text().splitlines()) == 1


def test_a_missing_lender_is_refused(tmp_path):
    job = Job("a", "A", 1, tmp_path / "a" / "seed1", ("seed=1",))
    with pytest.raises(NmtError, match="borrow: .*nowhere is not a directory of records"):
        borrow(job, tmp_path, [tmp_path / "nowhere"])


def test_table_4_shares_exactly_two_rows_with_table_1():
    """Table 4's global (location) and local-p (general) jobs are Table 1's two "+ feed input"
    jobs, seed for seed, so borrowing them is training them; no other row matches."""
    papers = {
        name: OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{name}.yaml")
        for name in ("luong15", "luong15_t4")
    }
    table_1, table_4 = (plan(papers[n], "cpu", 3, Path("out"), []) for n in papers)
    by_overrides = {job.overrides: job.row for job in table_1}
    shared = {(j.row, by_overrides[j.overrides]) for j in table_4 if j.overrides in by_overrides}
    assert shared == {
        ("global_location", "global_location_feed"),
        ("local_p_general", "local_p_general_feed"),
    }


def test_job_times_sum_the_sittings_and_name_each_cpu_once(tmp_path):
    sittings = [
        {"row": "a", "seed": 1, "wall_s": 60.0, "exit": -15, "commit": "c1", "cpu": "AVX512"},
        {"row": "a", "seed": 1, "wall_s": 30.0, "exit": 0, "commit": "c2", "cpu": "AVX2"},
        {"row": "a", "seed": 2, "wall_s": 10.0, "exit": 0, "commit": "c2", "cpu": "AVX2"},
        {"row": "a", "seed": 2, "wall_s": 5.0, "exit": 0, "commit": "c2", "cpu": "AVX2"},
        {"row": "b", "seed": 1, "wall_s": 20.0, "exit": 0},  # written before sittings named it
    ]
    (tmp_path / JOBS_LOG).write_text("".join(json.dumps(s) + "\n" for s in sittings))

    times = job_times(tmp_path)

    assert times[("a", 1)]["wall_s"] == 90.0 and times[("a", 1)]["cpus"] == ["AVX512", "AVX2"]
    assert times[("a", 2)]["cpus"] == ["AVX2"] and times[("a", 2)]["commits"] == ["c2", "c2"]
    assert times[("b", 1)]["cpus"] == [] and times[("b", 1)]["other_cpu_s"] is None


def test_a_torn_sitting_in_a_record_or_jobs_log_keeps_the_complete_ones(tmp_path):
    lender = tmp_path / "lender"
    same = ("experiment=a", "seed=1")
    source = write_record(lender, "a", 1, list(same), 2.0)
    with open(source / "sittings.jsonl", "a") as f:
        f.write('{"row": "a", "seed": 1, "wall_')  # the record's last append was cut short
    out = tmp_path / "out"
    out.mkdir()
    with open(out / JOBS_LOG, "w") as f:
        f.write('{"row": "b", "seed": 1, "wall_s": 5.0, "exit": 0}\n{"row": "b", "se')
    job = Job("a", "A", 1, out / "a" / "seed1", same)

    assert borrow(job, out, [lender]) == source
    times = job_times(out)
    assert times[("a", 1)]["wall_s"] == 60.0 and times[("b", 1)]["wall_s"] == 5.0
    assert all(json.loads(line) for line in (out / JOBS_LOG).read_text().splitlines())
