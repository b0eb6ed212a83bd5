"""nmt-reproduce: every paper row composes and builds, the plan is stable across calls, and the
whole pipeline runs on the toy corpus through the report, resuming after a SIGKILL mid-sweep."""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from matplotlib.image import imread
from omegaconf import OmegaConf
from toys import TINY

from nmt.config import CONFIG_DIR
from nmt.errors import NmtError
from nmt.models.build import build_model
from nmt.papers.claims import CLAIM_TESTS
from nmt.papers.plan import Job, check_same_job, plan, row_overrides
from nmt.papers.records import SAME_RUN

PAPERS = sorted(p.stem for p in (Path(CONFIG_DIR) / "paper").glob("*.yaml"))


def paper_file(name: str):
    return OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{name}.yaml")


def rows_at_every_scale():
    for name in PAPERS:
        paper = paper_file(name)
        for row in paper.rows:
            for scale in paper.scales:
                yield pytest.param(name, row.id, scale, id=f"{name}-{row.id}-{scale}")


@pytest.mark.parametrize(("name", "row_id", "scale"), list(rows_at_every_scale()))
def test_every_row_composes_at_every_scale_and_builds_at_cpu(name, row_id, scale):
    paper = paper_file(name)
    row = next(r for r in paper.rows if r.id == row_id)
    overrides = row_overrides(paper, row, scale, [])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "seed=1"])
    assert cfg.seed == 1
    if scale == "cpu":
        budget = paper.scales.cpu.max_steps  # null: the convergence protocol decides
        factor = row.get("steps_factor", 1)
        assert cfg.trainer.max_steps == (None if budget is None else budget * factor)
        joint = cfg.tokenizer.joint
        built = build_model(cfg.model, src_vocab_size=20, tgt_vocab_size=30, joint_vocab=joint)
        assert built.generator.out_features == 30
    else:
        assert cfg.model.hidden_size == 1000 and cfg.trainer.max_steps is None


def test_bahdanau_at_paper_scale_keeps_the_published_setup():
    paper = paper_file("bahdanau14")
    row = next(r for r in paper.rows if r.id == "rnnsearch50")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*row_overrides(paper, row, "paper", []), "seed=1"])
    assert (cfg.model.emb_size, cfg.model.hidden_size) == (620, 1000)
    assert cfg.model.decoder.maxout_size is None  # hidden_size / 2 = 500
    assert (cfg.tokenizer.model_type, cfg.tokenizer.vocab_size) == ("word", 30000)
    assert cfg.optim.optimizer._target_ == "torch.optim.Adadelta" and cfg.optim.clip_norm == 1
    assert (cfg.trainer.batch_size, cfg.data.max_len) == (80, 50)
    assert cfg.data.corpus.path == "wmt14" and cfg.data.corpus.name == "fr-en"


@pytest.mark.parametrize("name", PAPERS)
def test_a_paper_file_is_complete(name):
    paper = paper_file(name)
    ids = [row.id for row in paper.rows]
    assert len(set(ids)) == len(ids)
    for row in paper.rows:
        experiment = Path(CONFIG_DIR) / "experiment" / f"{row.experiment}.yaml"
        assert experiment.is_file(), experiment
        assert set(row.published) <= set(paper.published_columns)
    for scale in paper.scales.values():
        assert scale.changes, "every scale says how it differs from the paper"
    assert set(paper.report.length.rows) <= set(ids) and set(paper.report.heatmaps.rows) <= set(ids)
    if paper.report.table.get("against"):
        assert paper.report.table.against in ids
    for claim in paper.claims:
        assert claim.test.kind in CLAIM_TESTS
        assert {claim.test.get("a", ids[0]), claim.test.get("b", ids[0])} <= set(ids)


def test_the_main_rows_differ_only_where_the_papers_rows_do():
    """Bahdanau's four main rows get the same protocol and settings but model and length cap."""
    paper = paper_file("bahdanau14")
    main = [row for row in paper.rows if not row.get("overrides")]
    configs = []
    for row in main:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[*row_overrides(paper, row, "cpu", []), "seed=1"])
        container = OmegaConf.to_container(cfg)
        container["data"].pop("max_len")
        container.pop("model")
        configs.append(container)
    assert len(main) == 4 and all(c == configs[0] for c in configs)
    assert configs[0]["trainer"]["max_steps"] is None and configs[0]["trainer"]["patience"] == 4


def test_the_plan_names_jobs_stably_and_more_seeds_only_add_jobs(tmp_path):
    paper = paper_file("bahdanau14")
    three = plan(paper, "cpu", 3, tmp_path, ["trainer.num_threads=1"])
    five = plan(paper, "cpu", 5, tmp_path, ["trainer.num_threads=1"])
    assert [j.directory for j in three] == [j.directory for j in five if j.seed <= 3]
    assert three[0].directory == tmp_path / "rnnencdec30" / "seed1"
    assert [j.seed for j in three[:5]] == [1] * 5  # a whole seed first
    long = next(j for j in three if j.row == "rnnsearch50_long")
    assert "trainer.patience=null" in long.overrides and long.overrides[-1] == "seed=1"
    with pytest.raises(NmtError, match="seeds: must be at least 1"):
        plan(paper, "cpu", 0, tmp_path, [])
    with pytest.raises(NmtError, match="scale: 'gpu' is not one of"):
        plan(paper, "gpu", 1, tmp_path, [])


def test_a_job_directory_made_with_other_overrides_is_refused(tmp_path):
    job = Job("r", "R", 1, tmp_path / "r" / "seed1", ("experiment=x", "seed=1"))
    (job.directory / ".hydra").mkdir(parents=True)
    (job.directory / ".hydra" / "overrides.yaml").write_text("- experiment=x\n- seed=1\n")
    check_same_job(job)
    (job.directory / ".hydra" / "overrides.yaml").write_text("- experiment=y\n- seed=1\n")
    with pytest.raises(NmtError, match="was run with other overrides"):
        check_same_job(job)


# The toy reproduction: every row of bahdanau14 tiny, 2 seeds, claims adapted to toy lengths.
TOY = [
    "paper=bahdanau14",
    "seeds=2",
    "jobs=1",  # one at a time, whatever the machine (jobs=auto); jobs=2 has its own test
    "train_overrides=[{}]".format(
        ",".join(f'"{o}"' for o in TINY if not o.startswith(("trainer.max_steps", "trainer.valid")))
        + ',"trainer.valid_every=8"'
    ),
    "paper.scales.cpu.max_steps=16",
    "paper.report.heatmaps.min_words=3",
    "paper.report.heatmaps.max_words=8",
    "paper.claims.3.test.short_below=5",
    "paper.claims.3.test.long_from=6",
    "bootstrap_samples=50",
]


def _interrupted_job(out: Path) -> Path | None:
    """A job directory with a checkpoint but no results: a job caught mid-training."""
    for last in out.glob("*/seed*/checkpoints/last.pt"):
        if not (last.parent.parent / "results.json").exists():
            return last.parent.parent
    return None


@pytest.fixture(scope="module")
def toy_reproduction(tmp_path_factory, cache_dir):
    """Run the toy reproduction, SIGKILL it in its third job, run it again: (out, the killed
    job's directory, the second call's stdout)."""
    out = tmp_path_factory.mktemp("reproduce") / "toy"
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "nmt.reproduce", *TOY, f"out={out}"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not (len(list(out.glob("*/seed*/results.json"))) >= 2 and _interrupted_job(out)):
        assert first.poll() is None, first.stdout.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = _interrupted_job(out)
    time.sleep(1)  # the child gets SIGKILL with its parent: nothing may write the job now
    stamp = (killed / "checkpoints" / "last.pt").stat().st_mtime_ns
    time.sleep(1)
    assert (killed / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    return out, killed, second.stdout


def test_the_toy_reproduction_resumes_after_sigkill_and_reports(toy_reproduction):
    out, killed, stdout = toy_reproduction
    assert re.search(r"\[1/10\] RNNencdec-30 seed 1: finished earlier", stdout)
    # killed in its third job, once two had finished
    assert killed == out / "rnnencdec50" / "seed1"
    assert "[3/10] RNNencdec-50 seed 1: resuming from its last checkpoint" in stdout, stdout
    assert re.search(r"\[10/10\] RNNsearch-50\* seed 2: done in .* test BLEU", stdout)
    # the resumed job went on from its checkpoint: its metrics have no step twice
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 16
    assert len(list(out.glob("*/seed*/results.json"))) == 10
    report = (out / "report" / "report.md").read_text()
    headings = ["Claims", "Table 1: BLEU", "Figure 2", "Learning curves", "Figure 3"]
    for heading in [*headings, "Perplexity against BLEU", "Attention entropy"]:
        assert f"## {heading}" in report
    assert stdout.rstrip().splitlines()[-1].startswith("| 5 | Training longer")
    for png in ("bleu_by_length", "learning_curves", "ppl_vs_bleu", "heatmap_1", "heatmap_3"):
        assert (out / "report" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    # every claim got a verdict or says why it has none: after 16 updates the toy RNNencdec
    # rows have not learned (their BLEU is at their floor), and no run has converged
    claims = [line for line in report.splitlines() if re.match(r"\| \d \|", line)]
    assert len(claims) == 7
    assert all(
        line.rstrip(" |").endswith(("held", ")")) or "did not hold" in line for line in claims
    )
    assert "not testable here: the baseline has not learned (RNNencdec" in claims[0]
    assert all("not converged" in line or "not testable" in line for line in claims)


def test_a_third_call_runs_nothing(toy_reproduction, cache_dir):
    out, _, _ = toy_reproduction
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir)}
    before = sorted(p.stat().st_mtime_ns for p in out.glob("*/seed*/results.json"))
    done = subprocess.run(
        [sys.executable, "-m", "nmt.reproduce", *TOY, f"out={out}", "report_only=true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.stat().st_mtime_ns for p in out.glob("*/seed*/results.json")) == before
    assert "starting" not in done.stdout


def test_a_checkout_with_only_the_records_writes_the_same_report(toy_reproduction, tmp_path):
    """The records beside the report are enough: a new OUT restores every job from them,
    trains nothing, and reports the same claims, heatmaps included, without a checkpoint."""
    out, _, stdout = toy_reproduction
    records = out / "report" / "runs"
    assert len(list(records.glob("*/seed*/results.json"))) == 10
    assert (
        not list(records.rglob("*.pt"))
        and (records / "rnnsearch50/seed1/alignments.json").is_file()
    )
    copied = tmp_path / "checkout" / "runs"
    shutil.copytree(records, copied)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.reproduce",
            *TOY,
            f"out={tmp_path / 'new'}",
            f"records={copied}",
        ],
        env=os.environ | {"NMT_CACHE_DIR": str(tmp_path / "no-cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restored from the records" in done.stdout and "starting" not in done.stdout
    assert done.stdout.count("finished earlier") == 10
    claims = [line for line in stdout.splitlines() if re.match(r"\| \d \|", line)]
    assert claims == [line for line in done.stdout.splitlines() if re.match(r"\| \d \|", line)]
    report = (tmp_path / "new" / "report" / "report.md").read_text()
    assert "heatmap_3.png" in report and "no alignments" not in report
    timings = (out / "jobs.jsonl").read_text().splitlines()
    assert sorted((tmp_path / "new" / "jobs.jsonl").read_text().splitlines()) == sorted(timings)


def test_another_reproduction_borrows_the_runs_of_the_same_overrides(toy_reproduction, tmp_path):
    """borrow= lends the toy's records to a reproduction in a new OUT with its own records: every
    job ran there with the same overrides, so each is copied, none trained, and the report's
    Runs table names the record each came from."""
    out, _, _ = toy_reproduction
    lender = out / "report" / "runs"
    new = tmp_path / "new"
    done = subprocess.run(
        [sys.executable, "-m", "nmt.reproduce", *TOY, f"out={new}", f"borrow=[{lender}]"],
        env=os.environ | {"NMT_CACHE_DIR": str(tmp_path / "no-cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("the same run as") == 10 and "starting" not in done.stdout
    runs = (new / "report" / "report.md").read_text().split("## Runs", 1)[1]
    assert f"(the same run as {lender / 'rnnsearch50' / 'seed2'})" in runs
    assert len(list((new / "report" / "runs").glob(f"*/seed*/{SAME_RUN}"))) == 10


def test_the_toy_reproduction_report_renders_in_chromium(toy_reproduction, tmp_path):
    """The report's HTML as Chromium draws it: its DOM holds every table and image, every
    image is a PNG, and the screenshot is not blank. CI installs Chromium, so only a machine
    without it skips."""
    if shutil.which("chromium") is None and not os.environ.get("CI"):
        pytest.skip("needs chromium (.ci/run installs it)")
    sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))
    from render_report import dump_dom, render

    out, _, _ = toy_reproduction
    page = out / "report" / "report.html"
    dom = dump_dom(page)
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) == 6 and dom.count("<table") == 5
    assert all(base64.b64decode(data)[:4] == b"\x89PNG" for data in images)
    png = render(page=page, png=tmp_path / "report.png", height=2000)
    pixels = imread(png)  # (H, W, 4) floats in [0, 1]
    assert pixels.shape[0] == 2000 and (pixels[..., :3] < 0.5).mean() > 0.01


def test_sigterm_reaches_the_running_job_which_saves_its_step(tmp_path, cache_dir):
    out = tmp_path / "toy"
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    steps = [o for o in TOY if not o.startswith(("paper.scales", "seeds"))]
    command = [sys.executable, "-m", "nmt.reproduce", *steps, "seeds=1", f"out={out}"]
    command += ["paper.scales.cpu.max_steps=400"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last = out / "rnnencdec30" / "seed1" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while not last.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.decode().strip().splitlines()[-1] == (
        "error: interrupted by SIGTERM (the same command again goes on from each job's last "
        "checkpoint)"
    )
    from nmt.checkpoint import load_checkpoint

    step = load_checkpoint(last)["step"]
    child_log = (out / "logs" / "rnnencdec30-seed1.log").read_text()
    assert f"error: interrupted by SIGTERM at step {step}: saved {last}" in child_log
    sitting = json.loads((out / "jobs.jsonl").read_text().splitlines()[-1])
    assert sitting["exit"] is None and sitting["wall_s"] > 0


def test_time_left_goes_by_row_then_by_update(tmp_path):
    from nmt.papers.runner import time_left

    def job(row: str, seed: int, steps: int) -> Job:
        directory = tmp_path / row / f"seed{seed}"
        return Job(row, row, seed, directory, (f"trainer.max_steps={steps}", f"seed={seed}"))

    jobs = [job("a", 1, 100), job("b", 1, 400), job("a", 2, 100)]
    assert time_left(jobs, tmp_path) == "time left unknown"
    (jobs[0].directory).mkdir(parents=True)
    (jobs[0].directory / "results.json").write_text("{}")
    (tmp_path / "jobs.jsonl").write_text('{"row": "a", "seed": 1, "wall_s": 60.0}\n')
    # a's next seed at a's 60 s; b, unseen, at 0.6 s an update for 400 updates
    assert time_left(jobs, tmp_path) == f"about {(60 + 0.6 * 400) / 60:.1f} min left"


def _interrupted_jobs(out: Path) -> list[Path]:
    return [
        last.parent.parent
        for last in out.glob("*/seed*/checkpoints/last.pt")
        if not (last.parent.parent / "results.json").exists()
    ]


def test_two_jobs_side_by_side_resume_after_sigkill_and_match_one_at_a_time(
    toy_reproduction, tmp_path, cache_dir
):
    """jobs=2 runs two toy jobs at once, one thread each; SIGKILLed while both are mid-way and
    run again, it resumes both and ends with every seed-1 result of the jobs=1 fixture."""
    out = tmp_path / "toy"
    env = os.environ | {"NMT_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    seed1 = [o for o in TOY if not o.startswith(("seeds", "jobs"))]
    seed1 += ["seeds=1", "jobs=2", f"out={out}"]
    command = [sys.executable, "-m", "nmt.reproduce", *seed1]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while len(_interrupted_jobs(out)) < 2:
        assert first.poll() is None, first.stdout.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = _interrupted_jobs(out)
    assert len(killed) == 2
    time.sleep(1)  # both children got SIGKILL with their parent
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("resuming from its last checkpoint") == 2, second.stdout
    for job in killed:
        steps = [json.loads(x)["step"] for x in (job / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == 16
    sittings = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()]
    assert any(s["other_cpu_s"] for s in sittings if s["exit"] == 0)  # they shared the machine
    one_at_a_time, _, _ = toy_reproduction
    for results in sorted(one_at_a_time.glob("*/seed1/results.json")):
        row = results.parent.parent.name
        mine = json.loads((out / row / "seed1" / "results.json").read_text())
        theirs = json.loads(results.read_text())
        for key in ("bleu", "test_loss", "best_step", "steps"):
            assert mine[key] == theirs[key], (row, key)
    assert (out / "report" / "report.md").is_file()


def test_scale_on_the_command_line_picks_the_papers_scale(tmp_path):
    """`scale=` also names nmt-train's config group: nmt-reproduce takes it as the scale."""
    command = [sys.executable, "-m", "nmt.reproduce", "report_only=true", "bootstrap_samples=10"]
    done = subprocess.run(
        [*command, "paper=bahdanau14", "scale=paper", f"out={tmp_path / 'b'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "scale=paper" in (tmp_path / "b" / "report" / "report.md").read_text()
    refused = subprocess.run(
        [*command, "paper=zoo", "scale=paper", f"out={tmp_path / 'z'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: scale: 'paper' is not one of paper zoo's scales (cpu)"
    ]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seeds=abc", "error: seeds: 'abc' is not a whole number"),
        ("seeds=1.5", "error: seeds: 1.5 is not a whole number"),
        ("jobs=0", "error: jobs: must be at least 1, got 0"),
        ("bootstrap_samples=0", "error: bootstrap_samples: must be at least 1, got 0"),
        (
            "train_overrides='trainer.max_steps=5'",  # a string, not a list
            "error: train_overrides: 'trainer.max_steps=5' is not a list of strings "
            "(train_overrides=[a,b])",
        ),
    ],
)
def test_bad_values_are_one_line_before_any_work(tmp_path, override, expected):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "nmt.reproduce", "paper=zoo", override, f"out={out}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [expected]
    assert not out.exists()


def test_out_that_is_a_file_is_one_line(tmp_path):
    out = tmp_path / "a-file"
    out.write_text("mine\n")
    done = subprocess.run(
        [sys.executable, "-m", "nmt.reproduce", "paper=zoo", f"out={out}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: out={out}: is a file, not a directory"]
    assert out.read_text() == "mine\n"
