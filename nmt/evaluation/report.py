"""`nmt-report runs=[DIR,...] [out=DIR] [baseline=LABEL]`: compare finished runs.

Each entry of `runs` is a run directory (it has results.json) or a multirun directory (searched
recursively). Runs whose configs differ only in `seed` are one variant; the report gives each
variant's mean ± standard deviation over seeds, paired bootstrap significance against a baseline
variant, BLEU by sentence length, learning curves and dev perplexity against test BLEU, as
OUT/report.md (beside its PNGs) and a self-contained OUT/report.html.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from nmt import files
from nmt.errors import NmtError
from nmt.evaluation.plots import bleu_by_length_plot, learning_curves, ppl_vs_bleu
from nmt.evaluation.render import Section, Table, to_html, to_markdown
from nmt.evaluation.runs import Run, Variant, find_run_dirs, group_runs, load_run, pick_baseline
from nmt.evaluation.significance import paired_bootstrap

log = logging.getLogger(__name__)

ALPHA = 0.05


def mean_std(values: Sequence[float | None], fmt: str, *, spread: bool = True) -> str:
    """'mean ± std' over seeds (sample std), just the value for one seed, '–' for none."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1 or not spread:
        return format(values[0], fmt)
    return f"{format(statistics.mean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


# Results-table columns: title, value from results.json, format, whether seeds spread it.
COLUMNS: list[tuple[str, Callable[[dict], float | None], str, bool]] = [
    ("BLEU", lambda r: r.get("bleu"), ".2f", True),
    ("multi-ref BLEU", lambda r: r.get("bleu_multi_ref"), ".2f", True),
    ("chrF", lambda r: r.get("chrf"), ".2f", True),
    ("test ppl", lambda r: r.get("test_ppl"), ".2f", True),
    ("params", lambda r: r.get("params"), ",.0f", False),
    ("train time (min)", lambda r: _minutes(r.get("train_time_s")), ".1f", True),
    ("tokens/s", lambda r: r.get("train_tokens_per_s"), ",.0f", True),
]


def results_table(variants: list[Variant]) -> Table:
    """Each variant's scores, mean +- std over its runs."""
    rows = [
        [v.label, str(len(v.runs))]
        + [mean_std([get(r.results) for r in v.runs], fmt, spread=s) for _, get, fmt, s in COLUMNS]
        for v in variants
    ]
    return Table(["variant", "seeds"] + [c[0] for c in COLUMNS], rows)


def run_flags(run: Run) -> str:
    """What makes a run's numbers suspect: updates skipped for a non-finite loss or gradient
    norm, and scores that are missing (null: not finite when written)."""
    flags = []
    if run.results.get("nonfinite_steps"):
        flags.append(f"{run.results['nonfinite_steps']} updates skipped (non-finite)")
    missing = [key for key in ("bleu", "test_ppl") if run.results.get(key) is None]
    missing += ["dev ppl"] if any(r.get("dev_ppl") is None for r in run.metrics) else []
    if missing:
        flags.append(f"no finite {', '.join(missing)}")
    return "; ".join(flags)


def runs_table(variants: list[Variant]) -> Table:
    """Every run of every variant, with its directory."""
    rows = [
        [
            v.label,
            str(run.seed),
            mean_std([run.results.get("bleu")], ".2f"),
            mean_std([run.final_dev_ppl()], ".2f"),
            str(run.results.get("best_step", "–")),
            run_flags(run) or "–",
            str(run.path),
        ]
        for v in variants
        for run in v.runs
    ]
    header = ["variant", "seed", "BLEU", "final dev ppl", "best step", "flags", "directory"]
    return Table(header, rows)


def _test_files(run: Run, source: list[str] | None) -> tuple[list[str], list[str]]:
    """The run's test sources and hypotheses, checked against the baseline's sources."""
    src, hyps = run.lines("test.src"), run.lines("test.hyp")
    if len(hyps) != len(src):
        raise NmtError(f"{run.path}/test.hyp has {len(hyps)} lines but test.src {len(src)}")
    if source is not None and src != source:
        raise NmtError(
            f"{run.path}/test.src differs from the baseline's test.src; "
            "paired significance needs the same test set"
        )
    return src, hyps


def significance(variants: list[Variant], baseline: Variant, n_samples: int) -> list[dict]:
    """Paired bootstrap of each variant's first run against the baseline's first run, on the
    primary reference (the BLEU of the results table)."""
    base = baseline.runs[0]
    source, base_hyps = _test_files(base, None)
    refs = [base.lines("test.ref")]
    if len(refs[0]) != len(source):
        raise NmtError(f"{base.path}/test.ref has {len(refs[0])} lines but test.src {len(source)}")
    rows = []
    for variant in variants:
        if variant is not baseline:
            hyps = _test_files(variant.runs[0], source)[1]
            result = paired_bootstrap(base_hyps, hyps, refs, n_samples=n_samples)
            rows.append({"variant": variant, **result})
    return rows


def significance_table(baseline: Variant, rows: list[dict]) -> Table:
    """Each variant against the baseline: BLEU, its bootstrap mean and interval, the
    p-value."""

    def line(variant: Variant, bleu: float, mean: float, ci: float, p: float | None) -> list[str]:
        verdict = "baseline" if p is None else ("yes" if p < ALPHA else "no")
        if p is not None and bleu == rows[0]["baseline_bleu"]:
            # sacrebleu's test gives its smallest p-value, 1/(n+1), to equal scores.
            verdict = "no (same BLEU)"
        p_text = "–" if p is None else f"{p:.4f}"
        seed = str(variant.runs[0].seed)
        return [variant.label, seed, f"{bleu:.2f}", f"{mean:.2f} ± {ci:.2f}", p_text, verdict]

    first = rows[0]
    table = [
        line(baseline, first["baseline_bleu"], first["baseline_mean"], first["baseline_ci"], None)
    ]
    table += [
        line(r["variant"], r["system_bleu"], r["system_mean"], r["system_ci"], r["p_value"])
        for r in rows
    ]
    header = ["variant", "seed", "BLEU", "bootstrap mean ± 95% CI", "p-value", f"p < {ALPHA}"]
    return Table(header, table)


def make_plots(variants: list[Variant], out: Path) -> dict[str, Path]:
    """Write the report's PNGs into `out`; a plot without data is left out."""
    plots = {}
    by_length = {v.label: v.runs[0].results.get("bleu_by_length") for v in variants}
    by_length = {label: rows for label, rows in by_length.items() if rows}
    if by_length:
        plots["BLEU by sentence length"] = bleu_by_length_plot(
            by_length, out / "bleu_by_length.png"
        )
    colors = {v.run_label(r): f"C{i % 10}" for i, v in enumerate(variants) for r in v.runs}
    curves = {v.run_label(r): r.metrics for v in variants for r in v.runs if r.metrics}
    if curves:
        plots["Learning curves"] = learning_curves(
            curves, out / "learning_curves.png", colors=colors
        )
    points = [
        (v.run_label(r), r.final_dev_ppl(), r.results["bleu"])
        for v in variants
        for r in v.runs
        if r.final_dev_ppl() is not None and r.results.get("bleu") is not None
    ]
    if points:
        plots["Dev perplexity vs test BLEU"] = ppl_vs_bleu(
            points, out / "ppl_vs_bleu.png", colors=colors
        )
    return plots


CAPTIONS = {
    "BLEU by sentence length": "Test BLEU per source-length bucket (words; n = test sentences in "
    "the bucket), first seed of each variant (Bahdanau 2014 Figure 2, Luong 2015 Figure 6).",
    "Learning curves": "Dev perplexity (log scale) and dev BLEU at each validation, against "
    "training steps and wall-clock time, every run.",
    "Dev perplexity vs test BLEU": "Dev perplexity at the last validation against test BLEU, "
    "every run.",
}


def build_sections(
    variants: list[Variant], baseline: Variant, tests: list[dict], plots: dict[str, Path]
) -> list[Section]:
    """The report's content, shared by the Markdown and the HTML renderings."""
    runs = [r for v in variants for r in v.runs]
    signatures = sorted({str(r.results.get("bleu_signature")) for r in runs})
    sections: list[Section] = [
        (
            "Results",
            [
                f"{len(runs)} runs, {len(variants)} variants; mean ± standard deviation over "
                "seeds (the value alone for one seed). BLEU is sacrebleu's corpus BLEU against "
                "the primary reference, multi-ref BLEU against all references "
                f"({'; '.join(signatures)}).",
                results_table(variants),
            ],
        )
    ]
    if tests:
        note = (
            f"Paired bootstrap resampling ({tests[0]['signature']}; as sacrebleu --paired-bs) "
            f"of each variant against the baseline '{baseline.label}', on BLEU against the "
            "primary reference. Only the first seed of each variant is compared (its first run "
            f"in the Runs table). A p-value under {ALPHA} means the difference is significant."
        )
        sections.append(("Significance", [note, significance_table(baseline, tests)]))
    else:
        sections.append(("Significance", ["Only one variant: nothing to compare."]))
    sections += [(title, [CAPTIONS[title], path]) for title, path in plots.items()]
    sections.append(("Runs", [runs_table(variants)]))
    return sections


def write_report(
    *, entries: Sequence[str], out: Path, baseline: str | None = None, n_samples: int = 1000
) -> list[Path]:
    """Compare the runs under `entries` and write OUT/report.md, OUT/report.html and the PNGs.

    Args:
        entries: run or multirun directories.
        out: the report directory (created).
        baseline: label of the variant the others are tested against; None: the first.
        n_samples: paired bootstrap resamples.

    Returns:
        The paths of report.md and report.html.
    """
    if n_samples < 1:
        raise NmtError(f"bootstrap_samples: must be at least 1, not {n_samples}")
    variants = group_runs([load_run(path) for path in find_run_dirs(entries)])
    base = pick_baseline(variants, baseline)
    tests = significance(variants, base, n_samples)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(variants, base, tests, make_plots(variants, out))
    title = f"nmt report, {datetime.now():%Y-%m-%d %H:%M}"
    written = [out / "report.md", out / "report.html"]
    files.write_text(written[0], to_markdown(title, sections))
    files.write_text(written[1], to_html(title, sections))
    return written
