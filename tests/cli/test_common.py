"""The commands' shared error handling: config-group choices checked before Hydra composes, and
the errors a user can fix as one line."""

import contextlib
import errno
import logging
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf
from toys import TINY

from nmt.cli.common import cli, one_line, unknown_choice
from nmt.errors import NmtError
from nmt.logs import RunLogHandler


@pytest.mark.parametrize(
    "arguments",
    [
        ["model/attention=luong_dot", "seed=3"],
        ["-m", "model/attention=luong_dot,bahdanau"],
        ["+callbacks=trace_attention", "scale=paper", "paper=zoo"],
        ["experiment=glob(*)", "model.attention.window=5", "hydra/launcher=anything"],
        ["data.path=${oc.env:HOME}", "~tokenizer"],
    ],
)
def test_choices_that_exist_pass(arguments):
    assert unknown_choice(arguments) is None


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        (["paper=bahdanau14", "scale=unknown"], "scale=unknown"),
        (["-m", "model/attention=luong_dot,luong_dott"], "model/attention=luong_dott"),
        (["+experiment=nope"], "experiment=nope"),
    ],
)
def test_an_unknown_choice_names_itself_and_the_options(arguments, culprit):
    message = unknown_choice(arguments)
    assert message.startswith(f"{culprit}: no such option;")
    if culprit == "scale=unknown":
        assert message.endswith("scale is one of cpu, paper")


def test_errors_a_user_can_fix_are_one_line_and_bugs_are_not():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/report/figure.png")
    assert one_line(full) == "/data/report/figure.png: No space left on device"
    assert one_line(NmtError("seeds: must be at least 1")) == "seeds: must be at least 1"
    cfg = OmegaConf.create({"a": "${oc.env:NMT_SURELY_UNSET}"})
    with pytest.raises(Exception) as caught:
        cfg.a  # noqa: B018
    assert "NMT_SURELY_UNSET" in one_line(caught.value)
    assert "\n" not in one_line(caught.value)
    assert one_line(ValueError("a bug")) is None
    assert one_line(OSError(errno.EBADF, "Bad file descriptor")) is None


def only_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


def test_the_commands_refuse_an_unknown_choice_and_an_unset_variable_in_one_line(run_cli, tmp_path):
    proc = run_cli("reproduce", "paper=bahdanau14", "scale=unknown", check=False, cwd=tmp_path)
    assert only_error_line(proc) == (
        "error: scale=unknown: no such option; scale is one of cpu, paper"
    )
    run_dir = tmp_path / "run"
    unset = "trainer.max_steps=${oc.env:NMT_SURELY_UNSET}"
    proc = run_cli("train", unset, f"hydra.run.dir={run_dir}", check=False, cwd=tmp_path)
    assert "NMT_SURELY_UNSET" in only_error_line(proc)
    assert not run_dir.exists()


def test_a_full_disk_anywhere_in_a_command_is_one_line_and_exit_1(capsys):
    """Checkpoints keep the previous one on a full disk (tests/training); every other write (a
    report's figures, a cache, a log) fails the command with the file named."""

    def task(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/report/bleu.png")

    with pytest.raises(SystemExit) as exited:
        cli(task)(OmegaConf.create({}))
    assert exited.value.code == 1
    assert capsys.readouterr().err == "error: /runs/report/bleu.png: No space left on device\n"


def test_a_search_path_adds_its_folders_options(tmp_path):
    (tmp_path / "model" / "attention").mkdir(parents=True)
    (tmp_path / "model" / "attention" / "first_token.yaml").write_text("{}\n")
    plugin = ["model/attention=first_token", f"hydra.searchpath=[file://{tmp_path}]"]
    assert unknown_choice(plugin) is None
    assert "first_token" in unknown_choice(["model/attention=first_token"])
    assert unknown_choice(["model/attention=x", "hydra.searchpath=[pkg://elsewhere]"]) is None


def fill(folder) -> None:
    """Leave no space on `folder`'s filesystem."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a filesystem of 8 MB (mounting one needs root: skipped elsewhere)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small filesystem needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def full_disk(small_disk):
    fill(small_disk)
    return small_disk


def test_a_full_disk_under_a_run_or_a_cache_is_one_line(run_cli, full_disk, tmp_path):
    """On a real full filesystem: the run directory Hydra makes, and the tokenizer cache."""
    proc = run_cli("train", *TINY, f"hydra.run.dir={full_disk}/run", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].endswith("No space left on device")
    env = os.environ | {"NMT_CACHE_DIR": str(full_disk / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "nmt.train", *TINY, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].endswith("No space left on device")
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_on_a_read_only_disk_ends_in_one_error_line(run_cli, small_disk, tmp_path):
    """The run directory's lock, taken first, cannot be written: one line, exit 1."""
    run_dir = small_disk / "run"
    run_cli("train", *TINY, "trainer.max_steps=4", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = run_cli("train", f"resume={run_dir}", "trainer.max_steps=8", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == [lines[-1]]
    assert lines[-1].endswith("Read-only file system")


def test_a_log_that_cannot_be_written_says_so_once(tmp_path, capsys):
    """A run's log file that fails mid-run (a disk filling up) warns once; the run goes on."""
    log_file = tmp_path / "gone" / "train.log"  # its folder is missing: every open fails
    handler = RunLogHandler(log_file, delay=True)
    logger = logging.getLogger("nmt.test_log_handler")
    logger.addHandler(handler)
    try:
        for step in range(3):
            logger.warning("step %d", step)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"warning: {log_file}: No such file or directory; the log goes on on the console only"
    ]
