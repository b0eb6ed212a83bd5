"""A reproduction report's figures: BLEU by source length averaged over seeds, every run's
learning curves, and test perplexity against test BLEU with its correlation."""

from __future__ import annotations

import statistics
from pathlib import Path

from omegaconf import DictConfig

from nmt.evaluation.plots import bleu_by_length_plot, learning_curves, ppl_vs_bleu
from nmt.evaluation.render import Table
from nmt.evaluation.report import mean_std
from nmt.evaluation.runs import Run
from nmt.papers.claims import Row, pearson, perplexity_points


def mean_by_length(row: Row) -> list[dict]:
    """The row's bleu_by_length buckets with BLEU averaged over seeds (and its std)."""
    tables = [r.results["bleu_by_length"] for r in row.runs if r.results.get("bleu_by_length")]
    merged = []
    for cells in zip(*tables, strict=True):
        scores = [c["bleu"] for c in cells if c["bleu"] is not None]
        merged.append(
            {
                "bucket": cells[0]["bucket"],
                "n": cells[0]["n"],
                "bleu": statistics.mean(scores) if scores else None,
                "std": statistics.stdev(scores) if len(scores) > 1 else None,
            }
        )
    return merged


def length_section(paper: DictConfig, rows: dict[str, Row], out: Path) -> list:
    """BLEU by source length of the layout's rows: the figure and its table."""
    spec = paper.report.length
    shown = {rows[r].spec.label: mean_by_length(rows[r]) for r in spec.rows if rows[r].runs}
    shown = {label: buckets for label, buckets in shown.items() if buckets}
    if not shown:
        return ["No finished runs yet."]
    plot = bleu_by_length_plot(shown, out / "bleu_by_length.png")
    buckets = next(iter(shown.values()))
    header = ["model", *(f"{b['bucket']} (n={b['n']})" for b in buckets)]
    table = [
        [
            label,
            *(
                mean_std([b["bleu"]], ".2f")
                if b["std"] is None
                else f"{b['bleu']:.2f} ± {b['std']:.2f}"
                for b in cells
            ),
        ]
        for label, cells in shown.items()
    ]
    return [
        "Test BLEU per source-length bucket (words; n = test verses in the bucket), mean over "
        "seeds (± std across seeds in the table), as the paper's figure plots it on its test "
        "set.",
        plot,
        Table(header, table),
    ]


def attentional(run: Run) -> bool:
    """Whether the run's model has an attention (not the fixed context)."""
    target = run.config.get("model", {}).get("attention", {}).get("_target_", "")
    return not target.endswith("NoAttention")


GREYS = ["0.15", "0.4", "0.6", "0.75"]  # the non-attentional rows' colours


def curves_section(rows: dict[str, Row], out: Path) -> list:
    """Every run's learning curves in one figure."""
    curves, colors, shades = {}, {}, {True: 0, False: 0}
    for row in rows.values():
        if not row.runs:
            continue
        kind = attentional(row.runs[0])
        color = f"C{shades[kind] % 10}" if kind else GREYS[shades[kind] % len(GREYS)]
        shades[kind] += 1
        for run in row.runs:
            label = f"{row.spec.label} s{run.seed}"
            curves[label], colors[label] = run.metrics, color
    if not curves:
        return ["No finished runs yet."]
    path = learning_curves(curves, out / "learning_curves.png", colors=colors, by_time=False)
    return [
        "Dev perplexity and dev BLEU at every validation against updates, every run (one colour "
        "a row, one line style a seed; the non-attentional rows in greys).",
        path,
    ]


def perplexity_section(rows: dict[str, Row], out: Path) -> list:
    """Test perplexity against test BLEU, every run with the same tokenizer (its perplexity
    counts the same units), with Pearson's r."""
    points, left = perplexity_points(rows)
    if len(points) < 2:
        return ["Fewer than two finished runs."]
    r = pearson([p[1] for p in points], [p[2] for p in points])
    r_text = "undefined (one side is the same in every run)" if r is None else f"{r:+.2f}"
    colors = {row.spec.label: f"C{i % 10}" for i, row in enumerate(rows.values())}
    path = ppl_vs_bleu(points, out / "ppl_vs_bleu.png", colors=colors, xlabel="test perplexity")
    text = f"Test perplexity against test BLEU, every run: Pearson r = {r_text}."
    if left:
        text = (
            f"Test perplexity against test BLEU, every run but those of {', '.join(left)}, whose "
            f"perplexity is over another vocabulary's units: Pearson r = {r_text}."
        )
    return [text, path]
