"""nmt-translate end to end on the toy model, as a user runs it: from the checkpoint alone, beam
and n-best, saved attention, and ordinary shell use (pipes, closed descriptors, bad lines)."""

import json
import subprocess

import pytest


def test_translate_and_evaluate_rebuild_from_the_checkpoint(
    learned_run, translate_first, run_cli, tmp_path
):
    translations, the_runs = translate_first(5, "input=-", cwd=tmp_path)
    assert translations == the_runs
    assert list(tmp_path.iterdir()) == []  # no run directory
    run_dir, _ = learned_run
    run_cli(  # in batches of 8 over two processes: the same translations
        "evaluate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "decode.batch_size=8",
        "decode.workers=2",
        f"hydra.run.dir={tmp_path}/eval",
    )
    ours = json.loads((tmp_path / "eval" / "results.json").read_text())
    theirs = json.loads((run_dir / "results.json").read_text())
    assert ours["bleu"] == pytest.approx(theirs["bleu"])
    assert (tmp_path / "eval" / "test.hyp").read_text() == (run_dir / "test.hyp").read_text()


def test_translate_with_beam_n_best_and_saved_attention(learned_run, run_cli, tmp_path):
    run_dir, _ = learned_run
    sources = (run_dir / "test.src").read_text().splitlines()[:3]
    (tmp_path / "in.txt").write_text("\n".join(sources) + "\n")
    proc = run_cli(
        "translate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        f"input={tmp_path / 'in.txt'}",
        "decode=beam",
        "decode.beam_size=4",
        "decode.n_best=2",
        f"save_attention={tmp_path / 'att'}",
    )
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [int(r[0]) for r in rows] == [0, 0, 1, 1, 2, 2]
    assert all(float(rows[2 * i][1]) >= float(rows[2 * i + 1][1]) for i in range(3))
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == [
        "0000.json",
        "0000.png",
        "0001.json",
        "0001.png",
        "0002.json",
        "0002.png",
    ]
    record = json.loads((tmp_path / "att" / "0000.json").read_text())
    assert len(record["weights"]) == len(record["target"])
    assert len(record["weights"][0]) == len(record["source"])


def test_translate_takes_ordinary_shell_use(learned_run, run_cli, tmp_path):
    run_dir, _ = learned_run
    ckpt = f"checkpoint={run_dir}/checkpoints/best.pt"
    sources = (run_dir / "test.src").read_text().splitlines()[:3]
    # an empty line stays an empty line, and the others are what they are alone
    proc = run_cli("translate", ckpt, "input=-", input=f"{sources[0]}\n\n{sources[1]}\n")
    alone = run_cli("translate", ckpt, "input=-", input=f"{sources[0]}\n{sources[1]}\n")
    first, second = alone.stdout.splitlines()
    assert proc.stdout.splitlines() == [first, "", second]

    def refused(*args: str, expected: str, **kwargs) -> None:
        proc = run_cli("translate", ckpt, *args, check=False, **kwargs)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"error: {expected}"

    bad = tmp_path / "bad.en"
    bad.write_bytes(b"one fine line\nthen caf\xe9 in latin-1\n")
    refused(f"input={bad}", expected=f"input {bad}:2: not valid UTF-8 (byte 0xe9 at column 9)")
    refused(f"input={tmp_path}", expected=f"input {tmp_path}: is a directory, not a file")
    refused("input=-", "decode.beam_size=0", expected="decode.beam_size: must be at least 1, got 0")
    refused(
        "input=-",
        f"save_attention={bad}",
        input="a\n",
        expected=f"save_attention={bad}: a file, not a directory",
    )


def translate_in_bash(run_dir, cache_dir, script: str, input: str | None = None):
    """nmt-translate on the run's best checkpoint as `"$@"` of a bash script (pipes, closed
    descriptors), the script's exit status its own."""
    import os
    import sys

    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    translate = [sys.executable, "-m", "nmt.translate", f"checkpoint={run_dir}/checkpoints/best.pt"]
    return subprocess.run(
        ["bash", "-c", script, "bash", *translate],
        input=input,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_translate_into_a_closed_pipe_ends_quietly(learned_run, cache_dir):
    run_dir, _ = learned_run
    sources = (run_dir / "test.src").read_text() * 20  # more than a pipe's buffer of output
    script = '"$@" input=- | head -1; exit "${PIPESTATUS[0]}"'
    proc = translate_in_bash(run_dir, cache_dir, script, input=sources)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr


def test_translate_with_stdin_closed_is_one_line(learned_run, cache_dir):
    run_dir, _ = learned_run
    proc = translate_in_bash(run_dir, cache_dir, '"$@" input=- <&-')
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: input -: standard input is closed"


def test_a_huge_line_is_cut_and_every_other_line_translated(learned_run, run_cli):
    run_dir, _ = learned_run
    ckpt = f"checkpoint={run_dir}/checkpoints/best.pt"
    first, second = (run_dir / "test.src").read_text().splitlines()[:2]
    huge = " ".join([first] * 20_000)
    proc = run_cli("translate", ckpt, "input=-", input=f"{first}\n{huge}\n{second}\n")
    alone = run_cli("translate", ckpt, "input=-", input=f"{first}\n{second}\n").stdout
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and [lines[0], lines[2]] == alone.splitlines()
    assert "sentence 2: " in proc.stderr and "cut to decode.max_src_len=256" in proc.stderr


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_one_line(
    learned_run, run_cli, tmp_path
):
    import torch

    from nmt.checkpoint import load_checkpoint, save_checkpoint

    run_dir, _ = learned_run
    saved = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    saved["config"]["model"]["hidden_size"] *= 2
    saved.pop("format")
    save_checkpoint(tmp_path / "odd.pt", saved)
    proc = run_cli(
        "translate", f"checkpoint={tmp_path}/odd.pt", "input=-", input="a\n", check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: checkpoint {tmp_path}/odd.pt: its weights do not fit the model")
    assert torch.is_tensor(saved["model"][next(iter(saved["model"]))])
