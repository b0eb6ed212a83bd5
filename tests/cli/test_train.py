"""nmt-train end to end on the toy task, as a user runs it: the files a run writes, a learned task
scored as sacrebleu scores it, sweeps, the reference models, and one-line errors for bad input."""

import json
import math
import subprocess

import pytest
from hydra import compose, initialize_config_dir
from toys import TINY

from nmt.config import CONFIG_DIR, train_job
from nmt.errors import NmtError

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


def test_the_reference_models_train_and_decode_end_to_end(translate_first, run_cli, tmp_path):
    """fast=false: training, scoring and translating run the plain torch models of nmt/models,
    and the reference decodes the fast layer's checkpoint to the same translations."""
    run_cli("train", *TINY, "fast=false", f"hydra.run.dir={tmp_path}/run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 12 and math.isfinite(results["test_ppl"])
    translations, the_runs = translate_first(5, "fast=false")
    assert translations == the_runs


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


def test_a_copy_model_trains_and_translates_from_its_checkpoint(run_cli, tmp_path):
    args = [*TINY, "model.copy=true", "trainer.max_steps=4", "trainer.valid_every=4"]
    run_cli("train", *args, f"hydra.run.dir={tmp_path}/run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 4 and math.isfinite(results["test_ppl"])
    checkpoint = f"checkpoint={tmp_path}/run/checkpoints/best.pt"
    source = (tmp_path / "run" / "test.src").read_text().splitlines()[0]
    proc = run_cli("translate", checkpoint, input=source + "\n")
    assert len(proc.stdout.splitlines()) == 1


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
        ([*TINY, "model.encoder.cell=rnn"], "model.encoder.cell"),
        (["data.corpus.tgt=Q"], "no translation 'Q'"),
        ([*TINY, "tokenizer=word", "model.copy=true"], "model.copy: copying needs a joint"),
    ],
)
def test_bad_config_is_one_clear_error(run_cli, tmp_path, args, expected):
    proc = run_cli("train", *args, f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script_works_from_any_directory(run_cli, tmp_path):
    args = [*TINY, "trainer.max_steps=2", "trainer.valid_every=2"]
    run_cli("train", *args, cwd=tmp_path, script=True, timeout=300)
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
        ("trainer.early_stop_metric=bleu", "trainer.early_stop_metric"),
        ("trainer.precision=half", "trainer.precision"),
        ("decode.precision=half", "decode.precision"),
        ("decode.workers=0", "decode.workers"),
        ("reset=[optimizer]", "reset: only with resume=RUN_DIR"),
        ("reset=[optimiser]", "reset: 'optimiser' is not one of optimizer, early_stopping"),
    ],
)
def test_bad_values_are_refused_by_the_typed_config(override, expected):
    """train_job, which nmt-train calls first, types every value (the CLI case is below)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, override])
    with pytest.raises(NmtError) as err:
        train_job(cfg)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_bad_values_are_refused_before_any_work(run_cli, tmp_path):
    run = tmp_path / "run"
    proc = run_cli("train", *TINY, "trainer.batch_size=-4", f"hydra.run.dir={run}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: trainer.batch_size: must be at least 1, got -4"
    ]
    assert not run.exists()  # refused before the corpus was read; nothing left behind
