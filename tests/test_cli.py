"""The console scripts end to end on the toy task, as a user runs them."""

import json
import math
import shutil
import subprocess

import pytest
from conftest import TINY

RESULT_KEYS = {
    "bleu",
    "bleu_signature",
    "bleu_multi_ref",
    "chrf",
    "ter",
    "test_ppl",
    "bleu_by_length",
    "params",
    "train_time_s",
    "train_tokens_per_s",
    "best_step",
    "decode",
}
LEARN = [
    *TINY,
    "model.emb_size=32",
    "model.hidden_size=64",
    "trainer.max_steps=null",
    "trainer.max_epochs=10",
    "trainer.valid_every=250",
    "trainer.batch_size=32",
    "data.corpus.n_train=2000",
    "data.corpus.n_test=100",
    "optim.optimizer.lr=0.005",
    "model.init=uniform",
]


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory, cache_dir):
    """A toy model trained well enough to have a real BLEU (shared by several tests)."""
    import os
    import sys

    run_dir = tmp_path_factory.mktemp("learned")
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "nmt.train", *LEARN, f"hydra.run.dir={run_dir}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc


def test_tiny_run_writes_every_design_file(run_cli, tmp_path):
    proc = run_cli("train", *TINY, f"hydra.run.dir={tmp_path}/run")
    run = tmp_path / "run"
    for name in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "train.log",
        "metrics.jsonl",
        "results.json",
        "test.src",
        "test.hyp",
        "test.ref",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert RESULT_KEYS <= results.keys()
    assert sum(b["n"] for b in results["bleu_by_length"]) == 40
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [6, 12]
    assert {
        "step",
        "epoch",
        "train_loss",
        "dev_loss",
        "dev_ppl",
        "dev_bleu",
        "lr",
        "tokens_per_s",
        "elapsed_s",
    } <= metrics[0].keys()
    assert "test BLEU" in proc.stdout and str(run) in proc.stdout
    assert len((run / "test.hyp").read_text().splitlines()) == 40


def test_the_toy_task_is_learned_and_bleu_matches_the_sacrebleu_cli(learned_run):
    run_dir, proc = learned_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["bleu"] > 80, proc.stderr[-2000:]
    cli = subprocess.run(
        [
            "sacrebleu",
            str(run_dir / "test.ref"),
            "-i",
            str(run_dir / "test.hyp"),
            "-m",
            "bleu",
            "-w",
            "6",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    reported = json.loads(cli.stdout)
    assert reported["score"] == pytest.approx(results["bleu"], abs=1e-6)
    assert reported["signature"] == results["bleu_signature"]


def test_translate_and_evaluate_rebuild_from_the_checkpoint(learned_run, run_cli, tmp_path):
    run_dir, _ = learned_run
    sources = (run_dir / "test.src").read_text().splitlines()[:5]
    proc = run_cli(
        "translate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "input=-",
        input="\n".join(sources) + "\n",
        cwd=tmp_path,
    )
    lines = proc.stdout.splitlines()
    assert lines == (run_dir / "test.hyp").read_text().splitlines()[:5]
    assert list(tmp_path.iterdir()) == []  # no run directory

    proc = run_cli(  # in batches of 8 over two processes: the same translations
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


def test_the_reference_models_train_and_decode_end_to_end(learned_run, run_cli, tmp_path):
    """fast=false: training, scoring and translating run the plain torch models of nmt/models,
    and the reference decodes the fast layer's checkpoint to the same translations."""
    from conftest import TINY

    run_cli("train", *TINY, "fast=false", f"hydra.run.dir={tmp_path}/run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 12 and math.isfinite(results["test_ppl"])
    run_dir, _ = learned_run
    sources = (run_dir / "test.src").read_text().splitlines()[:5]
    proc = run_cli(
        "translate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "fast=false",
        input="\n".join(sources) + "\n",
    )
    assert proc.stdout.splitlines() == (run_dir / "test.hyp").read_text().splitlines()[:5]


def test_evaluate_another_split_and_data_with_beam(learned_run, run_cli, tmp_path):
    run_dir, _ = learned_run
    run_cli(
        "evaluate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "split=dev",
        "data=toy_reverse",
        "data.corpus.n_dev=15",
        "decode=beam",
        "decode.beam_size=3",
        f"hydra.run.dir={tmp_path}/eval",
    )
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["split"] == "dev" and results["decode"]["beam_size"] == 3
    assert len((tmp_path / "eval" / "dev.hyp").read_text().splitlines()) == 15
    assert results["bleu"] > 50
    assert not (run_dir / "dev.hyp").exists()  # nothing written into the training run


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


def test_word_vocabulary_with_unk_replacement_end_to_end(run_cli, tmp_path):
    run_cli(
        "train",
        *TINY,
        "tokenizer=word",
        "tokenizer.vocab_size=12",
        "decode.unk_replace=true",
        f"hydra.run.dir={tmp_path}/run",
    )
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["decode"]["unk_replace"] is True
    hyps = (tmp_path / "run" / "test.hyp").read_text()
    assert "<unk>" not in hyps  # every <unk> became a source word


def test_multirun_sweeps_attention_variants(run_cli, tmp_path):
    run_cli(
        "train", "-m", *TINY, "model/attention=none,bahdanau", f"hydra.sweep.dir={tmp_path}/sweep"
    )
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "results.json").is_file()
    overrides = (tmp_path / "sweep" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "model/attention=none" in overrides


@pytest.mark.slow  # CI sweeps two variants (test_multirun_sweeps_attention_variants)
def test_multirun_over_every_attention_of_the_luong_model(run_cli, tmp_path):
    variants = "none,bahdanau,luong_dot,luong_general,luong_concat,luong_location,local_m,local_p"
    run_cli(
        "train",
        "-m",
        *TINY,
        "model=luong",
        f"model/attention={variants}",
        "trainer.max_steps=20",
        "trainer.valid_every=20",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    for job in range(8):
        results = json.loads((tmp_path / "sweep" / str(job) / "results.json").read_text())
        assert results["steps"] == 20


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([*TINY, "trainer.max_stepz=5"], "trainer.max_stepz"),
        ([*TINY, "model/attention=foo"], "bahdanau"),  # lists the valid choices
        ([*TINY, "trainer.early_stop_metric=bleu"], "trainer.early_stop_metric"),
        ([*TINY, "model.encoder.cell=rnn"], "model.encoder.cell"),
        ([*TINY, "trainer.precision=half"], "trainer.precision"),
        ([*TINY, "decode.precision=half"], "decode.precision"),
        ([*TINY, "decode.workers=0"], "decode.workers"),
        (["data.corpus.tgt=Q"], "no translation 'Q'"),
    ],
)
def test_bad_config_is_one_clear_error(run_cli, tmp_path, args, expected):
    proc = run_cli("train", *args, f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script_works_from_any_directory(tmp_path, cache_dir):
    import os

    exe = shutil.which("nmt-train")
    if exe is None:
        pytest.skip("nmt-train is not installed on PATH")
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [exe, *TINY, "trainer.max_steps=2", "trainer.valid_every=2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "outputs" / "runs").glob("*/*/results.json"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.batch_size=-4", "trainer.batch_size: must be at least 1, got -4"),
        ("trainer.max_steps=abc", "trainer.max_steps: 'abc' is not an integer or null"),
        ("trainer.label_smoothing=2", "trainer.label_smoothing: must be in [0, 1), got 2"),
        ("trainer.valid_every=0", "trainer.valid_every: must be at least 1, got 0"),
        ("decode.batch_size=0", "decode.batch_size: must be at least 1, got 0"),
        ("tokenizer.vocab_size=0", "tokenizer.vocab_size: must be at least 8, got 0"),
        ("data.max_len=0", "data.max_len: must be at least 1, got 0"),
        ("model.hidden_size=ten", "model.hidden_size: 'ten' is not an integer"),
        ("seed=1.5", "seed: 1.5 is not an integer"),
    ],
)
def test_bad_values_are_refused_before_any_work(run_cli, tmp_path, override, expected):
    run = tmp_path / "run"
    proc = run_cli("train", *TINY, override, f"hydra.run.dir={run}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {expected}"]
    assert not run.exists()  # refused before the corpus was read; nothing left behind


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

    from nmt.training.checkpoint import load_checkpoint, save_checkpoint

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
