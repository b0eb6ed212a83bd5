"""nmt-report end to end on hand-made run directories: two attention variants x two seeds."""

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from sacrebleu.metrics import CHRF

from nmt.errors import NmtError
from nmt.evaluation.metrics import bleu, bleu_by_length
from nmt.evaluation.report import write_report
from nmt.evaluation.runs import group_runs, load_run

ROOT = Path(__file__).resolve().parents[2]
WORDS = "the a of and to in that he his was for on is with they be at by said not".split()
MOTS = "le la les de et à il que dans pour sur ne pas est avec ils dit par au se".split()
PLOTS = ("bleu_by_length.png", "learning_curves.png", "ppl_vs_bleu.png")


def _corrupt(line: str, rate: float, rng: random.Random) -> str:
    return " ".join(rng.choice(MOTS) if rng.random() < rate else w for w in line.split())


def make_run(
    path: Path, attention: str, seed: int, *, error_rate: float, n_lines: int = 30
) -> Path:
    """A finished run directory with every file nmt-train writes that nmt-report reads."""
    text = random.Random(0)  # the same test set for every run
    lengths = [4, 8, 12, 18, 25, 33, 44, 55]
    src = [" ".join(text.choices(WORDS, k=lengths[i % 8])) for i in range(n_lines)]
    ref = [" ".join(text.choices(MOTS, k=len(s.split()))) for s in src]
    ref1 = [_corrupt(r, 0.1, text) for r in ref]
    rng = random.Random(seed * 100 + len(attention))
    hyp = [_corrupt(r, error_rate, rng) for r in ref]
    (path / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "device": "auto",
        "resume": None,
        "paths": {"cache_dir": None},
        "model": {
            "attention": {"_target_": f"nmt.models.attention.{attention}"},
            "hidden_size": 16,
        },
        "trainer": {"max_steps": 400},
    }
    OmegaConf.save(OmegaConf.create(config), path / ".hydra" / "config.yaml")
    overrides = [f"model/attention={attention}", f"seed={seed}", "trainer.max_steps=400"]
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    files = {"test.src": src, "test.hyp": hyp, "test.ref": ref, "test.ref.1": ref1}
    for name, lines in files.items():
        (path / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    records = [
        {
            "step": step,
            "epoch": 0,
            "train_loss": 4.0 - step / 200,
            "dev_loss": 4.5 - step / 250 - error_rate,
            "dev_ppl": 90.0 / (step / 100) + 10 * error_rate + seed,
            "dev_bleu": None if step == 100 else step / 40 - 10 * error_rate,
            "lr": 0.001,
            "tokens_per_s": 1500.0,
            "elapsed_s": step * 0.5 + seed,
        }
        for step in (100, 200, 300, 400)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    results = {
        "bleu": bleu(hyp, [ref])[0],
        "bleu_signature": bleu(hyp, [ref])[1],
        "bleu_multi_ref": bleu(hyp, [ref, ref1])[0],
        "chrf": CHRF().corpus_score(hyp, [ref]).score,
        "ter": 100 * error_rate,  # sacrebleu's TER would take most of the test's time
        "bleu_by_length": bleu_by_length(src, hyp, ref),
        "test_ppl": 20.0 + 10 * error_rate + seed / 10,
        "params": 12345 + len(attention),
        "train_time_s": 200.0 + seed,
        "train_tokens_per_s": 1500.0 + seed,
        "best_step": 400,
        "decode": {"beam_size": 1},
    }
    (path / "results.json").write_text(json.dumps(results, indent=2))
    return path


@pytest.fixture
def multirun(tmp_path: Path) -> Path:
    """A multirun directory: jobs 0-3 = (bahdanau, none) x seeds (1, 2)."""
    root = tmp_path / "multirun"
    jobs = [("bahdanau", 1, 0.3), ("bahdanau", 2, 0.35), ("none", 1, 0.6), ("none", 2, 0.55)]
    for number, (attention, seed, rate) in enumerate(jobs):
        make_run(root / str(number), attention, seed, error_rate=rate)
    return root


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_report_compares_variants_over_seeds(run_cli, multirun, tmp_path):
    out = tmp_path / "report"
    proc = run_cli("report", f"runs=[{multirun}]", f"out={out}", "bootstrap_samples=200")
    assert proc.stdout.split() == [str(out / "report.md"), str(out / "report.html")]
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()

    results = _section(markdown, "Results")
    for label in ("model/attention=bahdanau", "model/attention=none"):
        row = next(line for line in results.splitlines() if line.startswith(f"| {label} |"))
        assert row.count(" ± ") >= 4, row  # BLEU, multi-ref, chrF, ppl, ... over two seeds
        assert "| 2 |" in row
    assert "seed=" not in results  # the seed does not make a variant
    significance = _section(markdown, "Significance")
    assert "first seed" in significance
    rows = [line for line in significance.splitlines() if line.startswith("| model/")]
    assert rows[0].startswith("| model/attention=bahdanau | 1 |") and "baseline" in rows[0]
    assert rows[1].startswith("| model/attention=none | 1 |")

    assert "<table>" in page and "</table>" in page
    assert page.count('src="data:image/png;base64,') == len(PLOTS)
    assert "http://" not in page and "https://" not in page  # self-contained
    for name in PLOTS:
        assert (out / name).stat().st_size > 1000
        assert f"]({name})" in markdown


SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_hostile_names_and_hypotheses_are_escaped_in_both_pages(run_cli, tmp_path):
    """A run's name, override values and hypotheses are data: report.md and report.html show
    them as text, never as HTML, links or images."""
    root = tmp_path / "hostile"
    jobs = [("bahdanau", 1, 0.3), ("none", 1, 0.6)]
    for number, (attention, seed, rate) in enumerate(jobs):
        run = make_run(root / f"{IMG}{number}", attention, seed, error_rate=rate)
        label = [f"model/attention={attention}{SCRIPT}", f"+x=[a](javascript:alert({number}))"]
        OmegaConf.save(OmegaConf.create(label), run / ".hydra" / "overrides.yaml")
        hyps = (run / "test.hyp").read_text().splitlines()
        hyps[0] = f"{IMG} {SCRIPT}"
        (run / "test.hyp").write_text("".join(h + "\n" for h in hyps))
    out = tmp_path / "report"
    run_cli("report", f"runs=[{root}]", f"out={out}", "bootstrap_samples=20")
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for raw in ("<script", "<img src=x"):
        assert raw not in markdown and raw not in page
    assert "[a](javascript" not in markdown  # in the page it is text anyway
    assert "&lt;script>alert(1)&lt;/script>" in markdown  # shown, as text
    assert "\\[a\\](javascript:alert(1))" in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x" in page


def test_baseline_is_chosen_by_label(run_cli, multirun, tmp_path):
    out = tmp_path / "report"
    run_cli("report", f"runs=[{multirun}]", f"out={out}", "baseline=none", "bootstrap_samples=50")
    significance = _section((out / "report.md").read_text(), "Significance")
    rows = [line for line in significance.splitlines() if line.startswith("| model/")]
    assert rows[0].startswith("| model/attention=none |") and "baseline" in rows[0]


def test_labels_fall_back_to_directory_names(tmp_path):
    runs = [
        load_run(make_run(tmp_path / name, attention, 1, error_rate=0.3))
        for name, attention in (("first", "bahdanau"), ("second", "luong_dot"))
    ]
    for run in runs:  # runs made without overrides
        (run.path / ".hydra" / "overrides.yaml").unlink()
    variants = group_runs([load_run(run.path) for run in runs])
    assert [v.label for v in variants] == ["first", "second"]


def _expect_error(run_cli, *args: str, message: str) -> None:
    proc = run_cli("report", *args, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr


def test_bad_inputs_are_one_line_errors(run_cli, multirun, tmp_path):
    out = f"out={tmp_path / 'report'}"
    _expect_error(run_cli, f"runs=[{tmp_path / 'nowhere'}]", out, message="nowhere")
    (tmp_path / "unfinished" / ".hydra").mkdir(parents=True)
    _expect_error(
        run_cli, f"runs=[{tmp_path / 'unfinished'}]", out, message="unfinished: no results.json"
    )
    _expect_error(run_cli, f"runs=[{multirun}]", out, "baseline=luong", message="baseline=luong")
    assert not (tmp_path / "report").exists()


def test_different_test_sets_are_refused(run_cli, multirun, tmp_path):
    src = multirun / "2" / "test.src"
    src.write_text(src.read_text().replace("the", "THE"))
    _expect_error(run_cli, f"runs=[{multirun}]", f"out={tmp_path / 'r'}", message=f"{src} differs")


@pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"),
    reason="needs chromium (.ci/run installs it)",
)
def test_report_renders_in_a_browser(run_cli, multirun, tmp_path):
    out = tmp_path / "report"
    run_cli("report", f"runs=[{multirun}]", f"out={out}", "bootstrap_samples=100")
    png = tmp_path / "report.png"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "render_report.py"),
            str(out / "report.html"),
            str(png),
        ],
        check=True,
        timeout=180,
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_attention_heatmap_writes_a_png_and_checks_shapes(tmp_path):
    from nmt.evaluation.plots import attention_heatmap

    weights = np.full((3, 4), 0.25)  # (T, S): rows sum to 1
    path = attention_heatmap(
        weights, ["a", "b", "c", "</s>"], ["x", "y", "</s>"], tmp_path / "a.png"
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="3 target x 5 source"):
        attention_heatmap(weights, list("abcde"), list("xyz"), tmp_path / "b.png")


def test_runs_with_non_finite_numbers_are_flagged_not_printed_as_nan(run_cli, multirun, tmp_path):
    results = multirun / "1" / "results.json"
    # an older run's file, with Python's non-JSON NaN, and skipped updates
    text = results.read_text().replace('"test_ppl": ', '"test_ppl": NaN, "was": ')
    results.write_text(text.replace("{", '{"nonfinite_steps": 7, ', 1))
    out = tmp_path / "report"
    run_cli("report", f"runs=[{multirun}]", f"out={out}", "bootstrap_samples=50")
    markdown = (out / "report.md").read_text()
    assert "nan" not in markdown.lower()
    runs = _section(markdown, "Runs")
    assert "7 updates skipped (non-finite); no finite test_ppl" in runs


CORRUPTIONS = {
    "a config that is not YAML": (".hydra/config.yaml", b"model: [unclosed\n", "not readable YAML"),
    "overrides that are not a list": (".hydra/overrides.yaml", b"a: 1\n", "expected a YAML list"),
    "a score that is not a number": (
        "results.json",
        b'{"bleu": "high"}',
        "'bleu' must be a number",
    ),
    "results cut short": ("results.json", b'{"bleu": 1', "not valid JSON"),
    "hypotheses that are not UTF-8": ("test.hyp", b"caf\xe9\n", "not UTF-8"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupted_run_file_is_named_in_one_line(run_cli, multirun, tmp_path, name):
    """Reports read files that a disk, an editor or a copy may have spoilt: the error names the
    file, and the report is not written. Through the API for each kind, the console script once."""
    file, content, message = CORRUPTIONS[name]
    spoilt = multirun / "2" / file  # a first seed: its hypotheses go into the paired tests
    spoilt.write_bytes(content)
    out = tmp_path / "report"
    if name == "hypotheses that are not UTF-8":
        _expect_error(run_cli, f"runs=[{multirun}]", f"out={out}", message=f"{spoilt}: not UTF-8")
    else:
        with pytest.raises(NmtError, match=re.escape(message)) as caught:
            write_report(entries=[str(multirun)], out=out, baseline=None, n_samples=10)
        assert str(spoilt) in str(caught.value)
    assert not out.exists()
