"""No run is lost: a run directory belongs to one run, and SIGINT or SIGTERM save the step a
run was at, from which `resume=` ends bit for bit where an uninterrupted run ends. Everything
goes through the console script, as a user runs it."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from toys import TINY

from nmt.checkpoint import load_checkpoint

LONG = [*TINY, "trainer.max_steps=120", "trainer.valid_every=20", "data.corpus.n_train=800"]
LONG += ["model.encoder.dropout=0.3", "seed=7"]


def hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def one_line_error(proc: subprocess.CompletedProcess, expected: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]


def start(cache_dir: Path, *args: str) -> subprocess.Popen:
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "nmt.train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.mark.slow  # CI: the live-run test below ends with the same refusal and hashes
def test_a_fresh_launch_into_a_run_directory_is_refused_and_changes_nothing(run_cli, tmp_path):
    run = tmp_path / "run"
    run_cli("train", *TINY, f"hydra.run.dir={run}")
    before = hashes(run)
    again = run_cli("train", *TINY, "trainer.max_steps=6", f"hydra.run.dir={run}", check=False)
    one_line_error(again, f"hydra.run.dir={run}: holds a run already")
    assert hashes(run) == before


def test_a_second_process_on_a_live_run_directory_is_refused(run_cli, tmp_path, cache_dir):
    run = tmp_path / "live"
    first = start(cache_dir, *LONG, f"hydra.run.dir={run}")
    try:
        wait_for(run / "checkpoints" / "last.pt", first)
        second = run_cli("train", f"resume={run}", check=False)
        one_line_error(second, f"run directory {run}: in use by another process (pid {first.pid})")
    finally:
        first.kill()
        first.wait()
    # the kernel drops a killed process's lock: the run resumes
    at = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    run_cli("train", f"resume={run}", f"trainer.max_steps={at + 20}")
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == at + 20


def test_failed_launches_leave_no_directory(run_cli, tmp_path):
    typo = tmp_path / "no-such-run"
    one_line_error(run_cli("train", f"resume={typo}", check=False), "no saved config")
    assert not typo.exists()
    failed = tmp_path / "failed"
    proc = run_cli("train", *TINY, "model.encoder.cell=rnn", f"hydra.run.dir={failed}", check=False)
    one_line_error(proc, "cell")
    assert not failed.exists()
    # a directory the user named keeps whatever else it held
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    mine = tmp_path / "mine"
    proc = run_cli("train", *TINY, "model.encoder.cell=rnn", f"hydra.run.dir={mine}", check=False)
    assert proc.returncode == 2 and sorted(os.listdir(mine)) == ["notes.txt"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache_dir) -> dict:
    """The uninterrupted run's final checkpoint."""
    run = tmp_path_factory.mktemp("straight") / "run"
    proc = start(cache_dir, *LONG, f"hydra.run.dir={run}")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return load_checkpoint(run / "checkpoints" / "last.pt")


@pytest.mark.parametrize(
    "signum",
    # CI runs SIGTERM (a cluster's warning); Ctrl-C takes the same path in nmt.training.signals
    [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_saves_the_step_and_resume_ends_as_an_uninterrupted_run(
    run_cli, straight, tmp_path, cache_dir, signum
):
    run = tmp_path / "run"
    proc = start(cache_dir, *LONG, f"hydra.run.dir={run}")
    wait_for(run / "checkpoints" / "last.pt", proc)  # step 20
    time.sleep(0.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    if saved >= 120:
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 128 + signum
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines == [
        f"error: interrupted by {name} at step {saved}: saved {run}/checkpoints/last.pt; "
        f"continue with: nmt-train resume={run}"
    ]
    assert not list(run.rglob("*.tmp*")), "no temporary file is left behind"

    run_cli("train", f"resume={run}")
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    assert resumed["step"] == straight["step"] == 120
    for key, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][key]), key


def strict_json(text: str) -> object:
    """json.loads that refuses NaN and Infinity, which Python's reader takes but JSON is not."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_diverging_run_skips_then_stops_and_writes_only_json(run_cli, tmp_path):
    run = tmp_path / "diverging"
    proc = run_cli(
        "train",
        *TINY,
        "optim=sgd_halving",
        "optim.optimizer.lr=1e12",
        "optim.clip_norm=null",
        "trainer.max_steps=60",
        "trainer.max_nonfinite=3",
        "trainer.valid_every=1",  # a checkpoint after every applied update
        "trainer.valid_bleu=false",
        "trainer.early_stop_metric=dev_loss",
        f"hydra.run.dir={run}",
        check=False,
    )
    one_line_error(proc, "updates in a row (trainer.max_nonfinite=3); the run stopped")
    log = (run / "train.log").read_text()
    assert "update skipped (1 in a row" in log and "update skipped (3 in a row" in log
    for path in [*run.rglob("*.json"), *run.rglob("*.jsonl")]:
        for line in (
            path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        ):
            strict_json(line)
    # its last checkpoint is the last applied update's, and the skipped ones never reached it
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert f"(its last checkpoint is at step {saved['step']})" in proc.stderr
    assert saved["train_state"]["nonfinite_in_a_row"] == 0
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def reversal_corpus(tmp_path: Path, n: int = 400) -> tuple[dict, list[str]]:
    """A toy text_files corpus (word lists and their reversals) under tmp_path: the splits'
    pairs, to be altered before `write_corpus`, and the overrides that train on it."""
    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(12)]
    rows = []
    for _ in range(n):
        sentence = rng.choices(words, k=rng.randint(3, 8))
        rows.append((" ".join(sentence), " ".join(reversed(sentence))))
    corpus = {"train": rows[: n - 40], "dev": rows[n - 40 : n - 20], "test": rows[n - 20 :]}
    data = ["data=text_files", f"data.corpus.prefix={tmp_path}/", "data.src_lang=src"]
    data += ["data.tgt_lang=tgt", *(o for o in TINY if not o.startswith("data"))]
    return corpus, data


def write_corpus(tmp_path: Path, corpus: dict) -> None:
    for split, pairs in corpus.items():
        for side, lang in enumerate(("src", "tgt")):
            (tmp_path / f"{split}.{lang}").write_text("".join(p[side] + "\n" for p in pairs))


def test_a_huge_test_line_is_cut_and_the_run_still_scores_its_test_set(run_cli, tmp_path):
    """A 30,000-word test pair: search and perplexity cut it (logged), results.json is written,
    and every test line has its hypothesis."""
    corpus, overrides = reversal_corpus(tmp_path, n=450)
    corpus["test"] = corpus["test"][:10]
    huge = [f"w{i % 12}" for i in range(30_000)]
    corpus["test"][4] = (" ".join(huge), " ".join(reversed(huge)))
    write_corpus(tmp_path, corpus)
    run = tmp_path / "run"
    proc = run_cli("train", *overrides, f"hydra.run.dir={run}")
    assert (run / "results.json").is_file()
    assert len((run / "test.hyp").read_text().splitlines()) == 10
    assert "sentence 5: " in proc.stderr and "cut to decode.max_src_len=256" in proc.stderr
    assert "pairs cut to 256 pieces a side for perplexity" in proc.stderr


def test_a_refused_resume_of_a_live_run_leaves_it_whole(run_cli, tmp_path, cache_dir):
    """A mistyped resume= on a run still loading its data touches none of its files: the run
    finishes with its saved config, and a fresh launch into its directory is still refused."""
    run = tmp_path / "live"
    live = start(cache_dir, *LONG, f"hydra.run.dir={run}")
    try:
        wait_for(run / ".lock", live)  # it holds its directory and loads its data
        live.send_signal(signal.SIGSTOP)  # held there, before its first checkpoint
        assert not (run / "checkpoints").exists()
        before = hashes(run)
        refused = run_cli("train", f"resume={run}", "seed=3", check=False)
        one_line_error(refused, "seed")
        after = hashes(run)
        assert {k: v for k, v in after.items() if k != "train.log"} == {
            k: v for k, v in before.items() if k != "train.log"
        }
        assert ".lock" in after and ".hydra/config.yaml" in after
    finally:
        live.send_signal(signal.SIGCONT)
    _, err = live.communicate(timeout=600)
    assert live.returncode == 0, err[-2000:]
    assert (run / "results.json").is_file() and (run / ".hydra" / "config.yaml").is_file()
    finished = hashes(run)
    again = run_cli("train", *TINY, f"hydra.run.dir={run}", check=False)
    one_line_error(again, f"hydra.run.dir={run}: holds a run already")
    assert hashes(run) == finished


def test_training_pairs_are_kept_within_max_pieces():
    from nmt.training.run import within_pieces

    src, tgt = [[1, 2], [1] * 300, [3]], [[1, 2, 3], [1, 2], [2] * 257]
    assert within_pieces(src, tgt, 256) == ([[1, 2]], [[1, 2, 3]])
    assert within_pieces(src, tgt, None) == (src, tgt)


@pytest.mark.slow  # CI keeps the unit test above
def test_a_training_pair_of_one_huge_word_is_dropped_by_its_pieces(run_cli, tmp_path):
    """A pair whose source is one 'word' of 12,000 characters passes data.max_len (words) and
    is dropped by data.max_pieces after tokenisation; the run trains on the others."""
    corpus, overrides = reversal_corpus(tmp_path)
    corpus["train"][7] = ("w1" * 6_000, "w1 w2")  # known characters: thousands of pieces
    write_corpus(tmp_path, corpus)
    run = tmp_path / "run"
    proc = run_cli("train", *overrides, f"hydra.run.dir={run}")
    assert "corpus: 1 training pairs dropped by max_pieces=256" in proc.stderr
    assert (run / "results.json").is_file()
