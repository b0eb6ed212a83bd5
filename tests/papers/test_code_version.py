"""A run's commit stamp: '-dirty' means the code, configs or scripts changed, not that a
reproduction wrote its results into the checkout."""

import shutil
import subprocess
from pathlib import Path

import pytest

from nmt.papers.provenance import code_version

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.org"]
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A committed checkout with a package module and a published report."""
    for path in ("nmt/module.py", "configs/paper/p.yaml", "docs/results/p/report.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("first\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_a_clean_checkout_is_its_commit(checkout):
    assert code_version(checkout / "nmt") == git(checkout, "rev-parse", "--short", "HEAD")


def test_results_written_into_the_checkout_leave_it_clean(checkout):
    (checkout / "docs/results/p/report.md").write_text("rewritten\n")
    (checkout / "docs/results/p/runs").mkdir()
    (checkout / "docs/results/p/runs/results.json").write_text("{}\n")
    assert not code_version(checkout / "nmt").endswith("-dirty")


@pytest.mark.parametrize("path", ["nmt/module.py", "configs/paper/p.yaml", "nmt/new_module.py"])
def test_a_changed_or_new_code_file_makes_it_dirty(checkout, path):
    (checkout / path).write_text("changed\n")
    assert (
        code_version(checkout / "nmt") == git(checkout, "rev-parse", "--short", "HEAD") + "-dirty"
    )


def test_outside_a_git_checkout_it_is_unknown(tmp_path):
    assert code_version(tmp_path) == "unknown"
