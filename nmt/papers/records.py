"""A reproduction's records: each finished job's results without its checkpoints, kept beside
the report (REPORT_DIR/runs by default) so that the report can be written again, and the
reproduction carried on, from a checkout that has only the records.

A record RECORDS/ROW/seedS/ holds what the report reads: results.json, metrics.jsonl,
.hydra/config.yaml and overrides.yaml, the test hypotheses, alignments.json where the row has
heatmaps, and the job's sittings (its lines of jobs.jsonl). Files every job shares (the test
source and references) are kept once, in RECORDS' `shared` folder by their SHA-256, and named in
each record's shared.json. `restore` copies a record back into an OUT/ROW/seedS that lacks the
finished run, so `nmt-reproduce` counts the job done instead of training it again. `borrow`
does the same from another reproduction's records, for a job that ran there with the very same
overrides (a row two papers share), and leaves SAME_RUN in the job naming the record it copied.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nmt import files
from nmt.errors import NmtError
from nmt.evaluation.runs import load_run
from nmt.files import inside
from nmt.papers.heatmaps import alignments
from nmt.papers.plan import Job
from nmt.papers.provenance import JOBS_LOG
from nmt.trust import load_yaml

OWN = ("results.json", "metrics.jsonl", ".hydra/config.yaml", ".hydra/overrides.yaml")
SAME_RUN = "same_run.json"  # {"record": the other reproduction's record this job copies}
OPTIONAL = ("test.hyp", "test.hyp.before_unk_replace", "alignments.json", SAME_RUN)
SHARED_PREFIX = "test."  # test.src, test.ref, test.ref.N: the same for every job of a split
SITTINGS = "sittings.jsonl"
SHARED = "shared.json"
SHARED_NAME = re.compile(r"test\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")  # test.src, test.ref.2
DIGEST = re.compile(r"[0-9a-f]{64}")


def record_dir(records: Path, job: Job) -> Path:
    """Where a job's record lives: RECORDS/ROW/seedS."""
    return records / job.row / f"seed{job.seed}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sittings(out: Path, job: Job) -> list[dict]:
    return [s for s in files.read_jsonl(out / JOBS_LOG) if _job_key(s) == (job.row, job.seed)]


def _job_key(sitting: dict) -> tuple[str, int]:
    return sitting["row"], sitting["seed"]


def is_current(job: Job, records: Path) -> bool:
    """Whether the finished job's record exists and holds all it has (alignments come later)."""
    target = record_dir(records, job)
    if not (target / "results.json").is_file():
        return False
    return all((target / n).is_file() for n in OPTIONAL if (job.directory / n).is_file())


def keep(job: Job, out: Path, records: Path, heatmaps: DictConfig) -> None:
    """Bring the finished job's record up to date: first seeds of the heatmap rows get their
    alignments computed (from the best checkpoint, which the record leaves out)."""
    if job.row in heatmaps.rows and job.seed == 1:
        alignments(load_run(job.directory), heatmaps, job.allow_targets)
    if not is_current(job, records):
        save(job, out, records)


def save(job: Job, out: Path, records: Path) -> Path:
    """Write the finished job's record (replacing an older one whole, never half); return it."""
    if job.status() != "done":
        raise NmtError(f"{job.directory}: not finished (no results.json), nothing to record")
    target = record_dir(records, job)
    staging = target.with_name(f".{target.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    for name in OWN:
        _copy(job.directory / name, staging / name)
    for name in OPTIONAL:
        if (job.directory / name).is_file():
            _copy(job.directory / name, staging / name)
    shared = {}
    for path in sorted(job.directory.glob(f"{SHARED_PREFIX}*")):
        if path.name in OPTIONAL or not path.is_file():
            continue
        digest = _digest(path)
        stored = records / "shared" / digest
        if not stored.is_file():
            files.atomic_write(stored, lambda f, p=path: f.write(p.read_bytes()))
        shared[path.name] = digest
    files.write_text(staging / SHARED, json.dumps(shared, indent=1, sort_keys=True) + "\n")
    sittings = _sittings(out, job)
    files.write_text(staging / SITTINGS, "".join(files.dumps(s) + "\n" for s in sittings))
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)
    return target


def _copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise NmtError(f"{source}: missing (a finished run has it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def restore(job: Job, out: Path, records: Path, allow: Sequence[str] = ()) -> bool:
    """Copy the job's record into its directory when the directory does not exist yet, and
    its sittings into OUT/jobs.jsonl; return whether it did."""
    source = record_dir(records, job)
    if job.directory.exists() or not (source / "results.json").is_file():
        return False
    _unpack(source, records, job, out, allow=allow)
    return True


def borrow(job: Job, out: Path, lenders: list[Path], allow: Sequence[str] = ()) -> Path | None:
    """When the job's directory does not exist yet, copy in the first finished record under
    `lenders` (other reproductions' records) whose run had exactly the job's overrides, seed
    included: the same training run, e.g. Table 1's "+ feed input" row is Table 4's global
    (location) row. Returns the record it copied, or None."""
    if job.directory.exists():
        return None
    for records in lenders:
        if not records.is_dir():
            raise NmtError(f"borrow: {records} is not a directory of records")
        for source in sorted(records.glob(f"*/seed{job.seed}")):
            saved = source / ".hydra" / "overrides.yaml"
            if not ((source / "results.json").is_file() and saved.is_file()):
                continue
            if [str(o) for o in OmegaConf.load(saved)] == list(job.overrides):
                _unpack(source, records, job, out, lent=True, allow=allow)
                return source
    return None


def record_files(source: Path, records: Path) -> dict[str, Path]:
    """What the record `source` holds, by the name it takes in a run directory: its own files
    (of the kinds a record keeps) and the shared ones its shared.json names. Every name is a
    plain file name, every path stays inside `records`, and none is a symbolic link; anything
    else is refused in one line before anything is copied."""
    what = f"record {source}"
    inside(source, records, what)
    found = {}
    for name in (*OWN, *OPTIONAL):
        path = inside(source / name, records, what)
        if path.exists() and not path.is_file():
            raise NmtError(f"{what}: {name} is not a plain file; refused")
        if path.is_file():
            found[name] = path
    shared_json = inside(source / SHARED, records, what)
    try:
        shared = json.loads(shared_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NmtError(f"{shared_json}: not a readable list of shared files ({err})") from None
    if not isinstance(shared, dict):
        raise NmtError(f"{shared_json}: not a mapping of file names to digests")
    for name, digest in shared.items():
        if not SHARED_NAME.fullmatch(name) or name in found:
            raise NmtError(f"{shared_json}: {name!r} is not the name of a shared test file")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise NmtError(f"{shared_json}: {name}: {digest!r} is not a SHA-256 digest")
        stored = inside(records / "shared" / digest, records, what)
        if not stored.is_file() or _digest(stored) != digest:
            raise NmtError(f"{stored}: missing or changed (named in {shared_json})")
        found[name] = stored
    return found


def _unpack(
    source: Path,
    records: Path,
    job: Job,
    out: Path,
    *,
    lent: bool = False,
    allow: Sequence[str] = (),
) -> None:
    """Copy the record `source` (its shared files from `records`) into the job's directory,
    whole or not at all, and its sittings into OUT/jobs.jsonl under the job's row. Its saved
    config must build only nmt's own classes (nmt.trust), as a checkpoint's must."""
    found = record_files(source, records)
    if ".hydra/config.yaml" in found:
        load_yaml(found[".hydra/config.yaml"], allow)
    inside(job.directory, out, f"row {job.row}")
    staging = job.directory.with_name(f".{job.directory.name}.restoring")
    shutil.rmtree(staging, ignore_errors=True)
    for name, path in found.items():
        _copy(path, staging / name)
    if lent and not (staging / SAME_RUN).is_file():
        files.write_text(staging / SAME_RUN, json.dumps({"record": str(source)}) + "\n")
    staging.rename(job.directory)
    kept = inside(source / SITTINGS, records, f"record {source}")
    sittings = files.read_jsonl(kept)
    if sittings and not _sittings(out, job):
        for sitting in sittings:
            files.append_jsonl(out / JOBS_LOG, sitting | {"row": job.row, "seed": job.seed})
