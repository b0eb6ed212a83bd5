"""A reproduction's report in its paper's layout: the results table with the published numbers
beside ours, BLEU by source length, learning curves, attention heatmaps and the claims table.

Everything comes from the paper file (configs/paper/NAME.yaml) and the finished run directories
(results.json, metrics.jsonl, test.* files, checkpoints/best.pt); nothing is read from logs.
The claim tests are the paper file's `claims`, each of one `kind` (see CLAIM_TESTS).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig

from nmt import files
from nmt.evaluation.render import Bullets, Section, Table, markdown_table, to_html, to_markdown
from nmt.evaluation.report import mean_std, run_flags
from nmt.evaluation.runs import Run
from nmt.papers.claims import (
    FLOOR_MARGIN,
    Evidence,
    Row,
    claims_table,
    converged,
    floor,
    gains_over,
    load_rows,
    signed_mean_std,
)
from nmt.papers.figures import curves_section, length_section, perplexity_section
from nmt.papers.heatmaps import heatmap_section
from nmt.papers.plan import Job, scale_spec
from nmt.papers.provenance import code_version, cpu_capability, job_times
from nmt.papers.records import SAME_RUN


def _values(row: Row, get: Callable[[dict], float | None]) -> list[float]:
    return [v for v in (get(r.results) for r in row.runs) if v is not None]


def _published(row: Row, key: str) -> str:
    value = row.spec.published.get(key)
    return "–" if value is None else f"{value:.2f}"


def _gain(value: float | None, previous: float | None) -> str:
    return "–" if value is None or previous is None else f"{value - previous:+.2f}"


def results_table(paper: DictConfig, rows: dict[str, Row], walls: dict, n_samples: int) -> Table:
    """The paper's table: published numbers beside ours, mean ± std over seeds. A
    `progressive` table adds each row's gain over the row above (ours and the paper's); one
    `against` a row adds every row's gain over it with the paired bootstrap p of each seed."""
    spec = paper.report.table
    columns = paper.published_columns
    unk = any(_values(row, lambda r: r.get("bleu_before_unk_replace")) for row in rows.values())
    header = ["model", "seeds", "BLEU", "floor", *(["BLEU before unk replace"] if unk else [])]
    header += [*(f"paper: {c}" for c in columns.values())]
    if spec.get("progressive"):
        header += ["gain", "paper: gain"]
    if spec.get("against"):
        header += [f"vs {rows[spec.against].spec.label}: gain (p per seed)"]
    header += ["multi-ref BLEU", "chrF", "test ppl", "attention entropy", "params"]
    header += ["updates (best)", "epochs", "stopped", "train (min)", "train tok/s"]
    header += ["job wall-clock (min)"]
    table, previous = [], None
    for row in rows.values():
        runs = row.runs
        wall = [
            walls[(row.spec.id, int(r.seed))]["wall_s"] / 60
            for r in runs
            if (row.spec.id, int(r.seed)) in walls
        ]
        bleus = _values(row, lambda r: r.get("bleu"))
        steps = mean_std(_values(row, lambda r: r.get("steps")), ".0f", spread=False)
        best = mean_std(_values(row, lambda r: r.get("best_step")), ".0f")
        line = [row.spec.label, str(len(runs)), mean_std(bleus, ".2f")]
        line.append(mean_std([floor(r) for r in runs], ".2f"))
        if unk:
            line.append(mean_std(_values(row, lambda r: r.get("bleu_before_unk_replace")), ".2f"))
        line += [_published(row, key) for key in columns]
        if spec.get("progressive"):
            ours = statistics.mean(bleus) if bleus else None
            before = previous and (statistics.mean(previous[0]) if previous[0] else None)
            line += [
                _gain(ours, before),
                _gain(row.spec.published.get("bleu"), previous and previous[1]),
            ]
            previous = (bleus, row.spec.published.get("bleu"))
        if spec.get("against"):
            line.append(against_cell(row, rows[spec.against], n_samples))
        line += [
            mean_std(_values(row, lambda r: r.get("bleu_multi_ref")), ".2f"),
            mean_std(_values(row, lambda r: r.get("chrf")), ".2f"),
            mean_std(_values(row, lambda r: r.get("test_ppl")), ".2f"),
            mean_std(_values(row, lambda r: r.get("attention_entropy")), ".2f"),
            mean_std(_values(row, lambda r: r.get("params")), ",.0f", spread=False),
            "–" if not runs else f"{steps} ({best})",
            mean_std(_values(row, lambda r: r.get("epochs")), ".1f"),
            stops(runs),
            mean_std(_values(row, lambda r: (r.get("train_time_s") or 0) / 60), ".1f"),
            mean_std(_values(row, lambda r: r.get("train_tokens_per_s")), ",.0f"),
            mean_std(wall, ".1f"),
        ]
        table.append(line)
    return Table(header, table)


def stop_of(run: Run) -> str:
    """Why the run stopped (results.json's stop_reason; for a run trained before the protocol
    recorded it, 'patience' if it stopped before its update budget, else 'budget'), marked
    ', improving' where it had not converged."""
    reason = run.results.get("stop_reason")
    if reason is None:
        budget = (run.config.get("trainer") or {}).get("max_steps")
        early = budget is not None and run.results.get("steps", budget) < budget
        reason = "patience" if early else "budget"
    return reason if converged(run) else f"{reason}, improving"


def stops(runs: list[Run]) -> str:
    """'plateau 2, max_epochs, improving 1': how many runs stopped for each reason."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[stop_of(run)] = counts.get(stop_of(run), 0) + 1
    return "; ".join(f"{reason} x{n}" for reason, n in sorted(counts.items())) or "–"


def against_cell(row: Row, baseline: Row, n_samples: int) -> str:
    """'+0.42 ± 0.30 (0.0120, 0.2000)': the row's gain over the baseline per seed pair."""
    if row is baseline:
        return "–"
    gains, p_values = gains_over(row, baseline, n_samples)
    if not gains:
        return "–"
    return f"{signed_mean_std(gains)} ({', '.join(f'{p:.4f}' for p in p_values)})"


def runs_table(rows: dict[str, Row], walls: dict) -> Table:
    """One line per run; 'shared' is the rest of the machine's CPU use while the run trained,
    in cores (0.5: half a core busy with other work on average), which slows a timing; 'CPU'
    the kernels torch used (AVX512, AVX2): timings compare only between runs on the same."""
    lines = []
    for row in rows.values():
        for run in row.runs:
            times = walls.get((row.spec.id, int(run.seed)))
            r = run.results
            lines.append(
                [
                    row.spec.label,
                    str(run.seed),
                    f"{r['bleu']:.2f}",
                    f"{floor(run):.2f}",
                    f"{r.get('steps', 0)} ({r.get('best_step', 0)})",
                    "–" if r.get("epochs") is None else f"{r['epochs']:.1f}",
                    stop_of(run),
                    f"{(r.get('train_time_s') or 0) / 60:.1f}",
                    "–" if times is None else f"{times['wall_s'] / 60:.1f}",
                    "–"
                    if times is None or times["other_cpu_s"] is None
                    else f"{times['other_cpu_s'] / max(times['wall_s'], 1e-9):.2f}",
                    "–" if times is None else ", ".join(times["cpus"] or ["–"]),
                    run_flags(run) or "–",
                    _directory(run),
                ]
            )
    header = ["model", "seed", "BLEU", "floor", "updates (best)", "epochs", "stopped"]
    header += ["train (min)", "wall-clock (min)"]
    return Table([*header, "shared (cores)", "CPU", "flags", "directory"], lines)


def _directory(run: Run) -> str:
    """The run's directory, and the record it was copied from when another reproduction lent it."""
    lent = run.path / SAME_RUN
    if not lent.is_file():
        return str(run.path)
    return f"{run.path} (the same run as {json.loads(lent.read_text())['record']})"


def entropy_table(rows: dict[str, Row]) -> Table:
    """Each row's mean attention entropy over its test hypotheses (nats, lower = sharper)."""
    lines = [
        [row.spec.label, mean_std(_values(row, lambda r: r.get("attention_entropy")), ".3f")]
        for row in rows.values()
        if row.runs
    ]
    return Table(["model", "attention entropy (nats)"], lines)


def machine() -> str:
    """The CPU model, its kernels, cores and torch version, for the setup section."""
    import torch

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = f"{len(names)}-core {names[0]}" if names else model
    return f"{model}, torch {torch.__version__} ({cpu_capability()})"


def setup_section(
    paper: DictConfig, scale: str, extra: list[str], walls: dict, finished: str
) -> list:
    """The command, the scale, how many runs finished, the commits they trained at and where
    the report was written, the paper's setup and every change from it at this scale (with the
    extra overrides)."""
    commits = sorted({c for t in walls.values() for c in t["commits"]})
    changes = list(scale_spec(paper, scale).changes)
    if extra:
        changes.append(f"Extra overrides of every run: {' '.join(extra)}")
    given = [a for a in sys.argv[1:] if not a.startswith("report_only=")]  # how it ran, not
    command = " ".join(["nmt-reproduce", *given])  # how this report was rewritten
    return [
        f"Command: `{command}`. Scale {scale}; {finished} runs finished. "
        f"Runs trained at commit {', '.join(commits) or 'unknown'}; report written at "
        f"{code_version()}, {machine()}, {datetime.now():%Y-%m-%d %H:%M}.",
        f"The paper: {paper.published_setup}",
        "Changes from the paper at this scale, and why:",
        Bullets(changes),
    ]


def claims_intro(alpha: float, margin: float, n_samples: int) -> str:
    """The claims section's first paragraph: how a claim is tested and when it gets no
    verdict."""
    return (
        "Each claim of the paper with its test (declared in the paper file): 'better' "
        "compares each seed's pair of runs (same seed) by paired bootstrap resampling of "
        f"test BLEU ({n_samples} resamples, sacrebleu's test), held when the gain is "
        f"positive on average and p < {alpha} in every pair. A claim gets no verdict "
        "where its rows cannot give one: 'not testable here: the baseline has not "
        "learned' when the row it compares against is within "
        f"{margin:g} BLEU of its floor (the source-independent BLEU of the results "
        "table), and 'not converged' when one of its runs stopped at its cap while its "
        "dev score was still improving (the Runs table's 'stopped'); the measured "
        "figures stay beside it."
    )


TABLE_INTRO = (
    "Test BLEU (sacrebleu, 13a, mixed case, against the primary reference), mean ± std "
    "over seeds, beside the paper's; multi-ref BLEU uses every reference. Updates: "
    "trained (best checkpoint's). Train: time in training steps; job: the whole run, "
    "validations and test decoding included, less any time it was suspended. Both "
    "grow when other work shares the machine (the Runs table's 'shared' column); the "
    "train time also counts a suspension that fell inside a step. Floor: the same "
    "hypotheses scored against the references of other test verses of about the same "
    "length (buckets of 20, a fixed shuffle), what a row earns without reading its "
    "source. Stopped: why each run ended (plateau: no better dev score for the "
    "patience; rate_floor: the halvings reached the floor; max_epochs, max_steps: the "
    "cap; budget, patience: the update budget or the early stop of a run trained "
    "before the convergence protocol), "
    "', improving' where the last validation was still the best."
)


def write_paper_report(
    paper: DictConfig,
    scale: str,
    jobs: list[Job],
    sweep: Path,
    out: Path,
    extra: list[str],
    *,
    n_samples: int = 1000,
) -> tuple[Path, str]:
    """Write OUT/report.md, OUT/report.html and their PNGs from the finished `jobs` of the
    reproduction in `sweep` (its jobs.jsonl gives the timings); return report.md's path and
    the claims table as Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    rows = load_rows(paper, jobs)
    walls = job_times(sweep)
    finished = f"{sum(len(r.runs) for r in rows.values())} of {len(jobs)}"
    heatmaps, measures = heatmap_section(paper, rows, out)
    layout = paper.report
    margin = FLOOR_MARGIN if paper.get("floor_margin") is None else float(paper.floor_margin)
    evidence = Evidence(rows, measures, paper.alpha, layout.heatmaps, n_samples, margin)
    claims = claims_table(paper, evidence)
    sections: list[Section] = [
        ("Setup", setup_section(paper, scale, extra, walls, finished)),
        ("Claims", [claims_intro(paper.alpha, margin, n_samples), claims]),
        (layout.table.title, [TABLE_INTRO, results_table(paper, rows, walls, n_samples)]),
        (layout.length.title, length_section(paper, rows, out)),
        (layout.curves.title, curves_section(rows, out)),
        ("Perplexity against BLEU", perplexity_section(rows, out)),
        ("Attention entropy", [entropy_table(rows)]),
        (layout.heatmaps.title, heatmaps),
        ("Runs", [runs_table(rows, walls)]),
    ]
    title = f"Reproduction of {paper.title}"
    files.write_text(out / "report.md", to_markdown(title, sections))
    files.write_text(out / "report.html", to_html(title, sections))
    return out / "report.md", markdown_table(claims)
