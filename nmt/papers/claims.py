"""A paper's rows as their finished runs, and the claim tests that read them.

Each claim of a paper file (configs/paper/NAME.yaml) names a test of one `kind` (CLAIM_TESTS):
a test takes its spec and the `Evidence` and returns our figure, the p-values and the verdict,
as text for the claims table.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence

import numpy as np
from omegaconf import DictConfig

from nmt.data import n_words
from nmt.evaluation.alignment import Monotonicity
from nmt.evaluation.metrics import bleu
from nmt.evaluation.render import Table
from nmt.evaluation.report import mean_std
from nmt.evaluation.runs import Run, load_run
from nmt.evaluation.significance import paired_bootstrap
from nmt.papers.jobs import Job

NOT_TESTABLE = "not testable here"


@dataclasses.dataclass(frozen=True)
class Row:
    """A paper row and its finished runs (seed order)."""

    spec: DictConfig
    runs: list[Run]

    def by_seed(self) -> dict[int, Run]:
        return {int(r.seed): r for r in self.runs}


def load_rows(paper: DictConfig, jobs: list[Job]) -> dict[str, Row]:
    finished: dict[str, list[Run]] = {row.id: [] for row in paper.rows}
    for job in jobs:
        if job.status() == "done":
            finished[job.row].append(load_run(job.directory))
    return {row.id: Row(row, finished[row.id]) for row in paper.rows}


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def signed_mean_std(values: Sequence[float]) -> str:
    """'+1.23 ± 0.45' (the mean signed, the spread not)."""
    if len(values) == 1:
        return f"{values[0]:+.2f}"
    return f"{statistics.mean(values):+.2f} ± {statistics.stdev(values):.2f}"


def _p_text(values: Sequence[float]) -> str:
    return ", ".join(f"{p:.4f}" for p in values) if values else "–"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the claim tests read: the rows' runs, the attention measures, the paper file's
    significance level and heatmap spec, and the bootstrap's resamples."""

    rows: dict[str, Row]
    measures: list[Monotonicity]
    alpha: float
    heatmaps: DictConfig
    n_samples: int


# A claim test: (its `test` spec, the evidence) -> (ours, p-values, verdict), as text.
ClaimTest = Callable[[DictConfig, Evidence], tuple[str, str, str]]


def check_better(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """Row a beats row b: paired bootstrap of each seed's pair of runs."""
    a, b, alpha = evidence.rows[test.a], evidence.rows[test.b], evidence.alpha
    pairs = [(s, a.by_seed()[s], b.by_seed()[s]) for s in a.by_seed() if s in b.by_seed()]
    if not pairs:
        return "–", "–", f"{NOT_TESTABLE} (no seed of both rows has finished)"
    gains, p_values = [], []
    for _, run_a, run_b in pairs:
        result = paired_bootstrap(
            run_b.lines("test.hyp"),
            run_a.lines("test.hyp"),
            [run_b.lines("test.ref")],
            n_samples=evidence.n_samples,
        )
        gains.append(result["system_bleu"] - result["baseline_bleu"])
        p_values.append(result["p_value"])
    scores = f"{mean_std([r.results['bleu'] for _, r, _ in pairs], '.2f')} vs " + mean_std(
        [r.results["bleu"] for _, _, r in pairs], ".2f"
    )
    ours = f"{signed_mean_std(gains)} BLEU ({scores}; {plural(len(pairs), 'seed pair')})"
    if statistics.mean(gains) > 0 and all(p < alpha for p in p_values):
        verdict = "held"
    elif statistics.mean(gains) > 0:
        verdict = f"did not hold: better, but not significant in every seed pair (p < {alpha})"
    else:
        verdict = "did not hold: not better"
    return ours, _p_text(p_values), verdict


def _subset_bleu(run: Run, keep: Callable[[int], bool]) -> float | None:
    """Corpus BLEU of the test sentences whose source length in words `keep` accepts (None
    when there are none)."""
    src, hyps, refs = run.lines("test.src"), run.lines("test.hyp"), run.lines("test.ref")
    chosen = [i for i, s in enumerate(src) if keep(n_words(s))]
    if not chosen:
        return None
    return bleu([hyps[i] for i in chosen], [[refs[i] for i in chosen]])[0]


def check_length_gap(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """The gap a - b is larger on long sources than on short ones, in every seed."""
    a, b = evidence.rows[test.a], evidence.rows[test.b]
    seeds = [s for s in a.by_seed() if s in b.by_seed()]
    if not seeds:
        return "–", "–", f"{NOT_TESTABLE} (no seed of both rows has finished)"
    short, long = [], []
    for s in seeds:
        run_a, run_b = a.by_seed()[s], b.by_seed()[s]
        for gaps, keep in (
            (short, lambda k: k < test.short_below),
            (long, lambda k: k >= test.long_from),
        ):
            score_a, score_b = _subset_bleu(run_a, keep), _subset_bleu(run_b, keep)
            if score_a is None or score_b is None:
                return "–", "–", f"{NOT_TESTABLE} (a length range has no test sentence)"
            gaps.append(score_a - score_b)
    ours = (
        f"gap {signed_mean_std(short)} under {test.short_below} words, "
        f"{signed_mean_std(long)} from {test.long_from} ({plural(len(seeds), 'seed')})"
    )
    widened = all(g_long > g_short for g_short, g_long in zip(short, long, strict=True))
    return ours, "–", "held" if widened else "did not hold: the gap does not widen in every seed"


def check_monotonic(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """The attention is mostly diagonal: the median Spearman rho over the heatmap verses."""
    measures = evidence.measures
    rhos = [m.rho for m in measures if m.rho is not None]
    if not rhos:
        return "–", "–", f"{NOT_TESTABLE} (no heatmap verse has two output words)"
    median = float(np.median(rhos))
    backward = statistics.mean(m.backward for m in measures)
    spec = evidence.heatmaps
    ours = (
        f"median Spearman rho {median:.2f} over {len(rhos)} verses of {spec.min_words}-"
        f"{spec.max_words} words; {backward:.0%} of target words step backwards"
    )
    verdict = "held" if median >= test.min_rho else f"did not hold: median rho < {test.min_rho}"
    return ours, "–", verdict


CLAIM_TESTS: dict[str, ClaimTest] = {
    "better": check_better,
    "length_gap": check_length_gap,
    "monotonic": check_monotonic,
}


def claims_table(paper: DictConfig, evidence: Evidence) -> Table:
    lines = []
    for claim in paper.claims:
        check = CLAIM_TESTS.get(claim.test.kind)
        if check is None:
            ours, p, verdict = "–", "–", f"{NOT_TESTABLE} (no test of kind '{claim.test.kind}')"
        else:
            ours, p, verdict = check(claim.test, evidence)
        lines.append([str(claim.id), claim.claim, claim.paper, ours, p, verdict])
    header = ["#", "claim", "paper", "ours (mean ± std over seeds)", "p (per seed)", "verdict"]
    return Table(header, lines)
