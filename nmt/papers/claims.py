"""A paper's rows as their finished runs, and the claim tests that read them.

Each claim of a paper file (configs/paper/NAME.yaml) names a test of one `kind` (CLAIM_TESTS;
the keys each needs are nmt.papers.spec.CLAIM_KINDS):
a test takes its spec and the `Evidence` and returns our figure, the p-values and the verdict,
as text for the claims table.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nmt.data import n_words
from nmt.evaluation.alignment import Monotonicity
from nmt.evaluation.metrics import bleu, floor_bleu, shuffled_references
from nmt.evaluation.render import Table
from nmt.evaluation.report import mean_std
from nmt.evaluation.runs import Run, load_run
from nmt.evaluation.significance import paired_bootstrap
from nmt.papers.plan import Job

NOT_TESTABLE = "not testable here"
NOT_CONVERGED = "not converged"
# BLEU over its source-independent floor under which a row has not learned to translate, and
# a comparison against it tests nothing (a paper file may declare its own `floor_margin`). The
# papers' weakest rows score 11-18 BLEU; a row within 5 of what it earns without reading its
# source says too little about it for its gap to another row to mean what the paper's does.
FLOOR_MARGIN = 5.0


@dataclasses.dataclass(frozen=True)
class Row:
    """A paper row and its finished runs (seed order)."""

    spec: DictConfig
    runs: list[Run]

    def by_seed(self) -> dict[int, Run]:
        return {int(r.seed): r for r in self.runs}


def load_rows(paper: DictConfig, jobs: list[Job]) -> dict[str, Row]:
    """Each paper row with the runs of its finished jobs."""
    finished: dict[str, list[Run]] = {row.id: [] for row in paper.rows}
    for job in jobs:
        if job.status() == "done":
            finished[job.row].append(load_run(job.directory))
    return {row.id: Row(row, finished[row.id]) for row in paper.rows}


def plural(n: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
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
    floor_margin: float = FLOOR_MARGIN


# A claim test: (its `test` spec, the evidence) -> (ours, p-values, verdict), as text.
ClaimTest = Callable[[DictConfig, Evidence], tuple[str, str, str]]


def seed_pairs(a: Row, b: Row) -> list[tuple[Run, Run]]:
    """The runs of a and b that share a seed, in seed order."""
    runs_a, runs_b = a.by_seed(), b.by_seed()
    return [(runs_a[s], runs_b[s]) for s in sorted(runs_a) if s in runs_b]


def bootstrap_gain(
    system: list[str], baseline: list[str], refs: list[str], n_samples: int
) -> tuple[float, float]:
    """(BLEU of system - BLEU of baseline, paired bootstrap p-value) on the same sources."""
    result = paired_bootstrap(baseline, system, [refs], n_samples=n_samples)
    return result["system_bleu"] - result["baseline_bleu"], result["p_value"]


def gains_over(a: Row, b: Row, n_samples: int) -> tuple[list[float], list[float]]:
    """Per seed pair: a's test BLEU gain over b's and its paired bootstrap p-value."""
    gains, p_values = [], []
    for run_a, run_b in seed_pairs(a, b):
        gain, p = bootstrap_gain(
            run_a.lines("test.hyp"), run_b.lines("test.hyp"), run_b.lines("test.ref"), n_samples
        )
        gains.append(gain)
        p_values.append(p)
    return gains, p_values


def verdict(gains: Sequence[float], p_values: Sequence[float], alpha: float, what: str) -> str:
    """held, or did not hold and why, from each seed pair's gain and p-value."""
    if statistics.mean(gains) > 0 and all(p < alpha for p in p_values):
        return "held"
    if statistics.mean(gains) > 0:
        return f"did not hold: better, but not significant in every {what} (p < {alpha})"
    return "did not hold: not better"


def check_better(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """Row a beats row b: paired bootstrap of each seed's pair of runs."""
    a, b, alpha = evidence.rows[test.a], evidence.rows[test.b], evidence.alpha
    pairs = seed_pairs(a, b)
    if not pairs:
        return "–", "–", f"{NOT_TESTABLE} (no seed of both rows has finished)"
    gains, p_values = gains_over(a, b, evidence.n_samples)
    scores = f"{mean_std([r.results['bleu'] for r, _ in pairs], '.2f')} vs " + mean_std(
        [r.results["bleu"] for _, r in pairs], ".2f"
    )
    ours = f"{signed_mean_std(gains)} BLEU ({scores}; {plural(len(pairs), 'seed pair')})"
    return ours, _p_text(p_values), verdict(gains, p_values, alpha, "seed pair")


def _over_floor(run: Run, keep: Callable[[int], bool]) -> float | None:
    """Corpus BLEU over its floor of the test sentences whose source length in words `keep`
    accepts: their BLEU less the same hypotheses' against the references of other sentences of
    about their length (nmt.evaluation.metrics.shuffled_references); None when there are none."""
    src, hyps, refs = run.lines("test.src"), run.lines("test.hyp"), run.lines("test.ref")
    chosen = [i for i, s in enumerate(src) if keep(n_words(s))]
    if not chosen:
        return None
    others = shuffled_references(src, refs)
    picked = [hyps[i] for i in chosen]
    return (
        bleu(picked, [[refs[i] for i in chosen]])[0]
        - bleu(picked, [[others[i] for i in chosen]])[0]
    )


def check_length_gap(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """Row a keeps more of its quality on long sources than row b, in every seed: each row's
    BLEU over its floor on sources of >= long_from words as a share of the same on sources of
    < short_below words (its retention), so that a row stuck near its floor on every length
    cannot make its curve look flat. The absolute gaps a - b per range are shown beside."""
    a, b = evidence.rows[test.a], evidence.rows[test.b]
    seeds = [s for s in a.by_seed() if s in b.by_seed()]
    if not seeds:
        return "–", "–", f"{NOT_TESTABLE} (no seed of both rows has finished)"
    over: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}  # (short, long) per seed
    for s in seeds:
        for side, run in (("a", a.by_seed()[s]), ("b", b.by_seed()[s])):
            over_short = _over_floor(run, lambda k: k < test.short_below)
            over_long = _over_floor(run, lambda k: k >= test.long_from)
            if over_short is None or over_long is None:
                return "–", "–", f"{NOT_TESTABLE} (a length range has no test sentence)"
            if over_short <= 0:
                label = evidence.rows[test[side]].spec.get("label", test[side])
                return "–", "–", f"{NOT_TESTABLE} ({label} is at its floor on short sources)"
            over[side].append((over_short, over_long))
    kept = {side: [long / short for short, long in pairs] for side, pairs in over.items()}
    pairs = list(zip(over["a"], over["b"], strict=True))
    gaps_short = [a_short - b_short for (a_short, _), (b_short, _) in pairs]
    gaps_long = [a_long - b_long for (_, a_long), (_, b_long) in pairs]
    ours = (
        f"over the floor, long sources keep {statistics.mean(kept['a']):.0%} vs "
        f"{statistics.mean(kept['b']):.0%} of short ones' BLEU; gap {signed_mean_std(gaps_short)} "
        f"under {test.short_below} words, {signed_mean_std(gaps_long)} from {test.long_from} "
        f"({plural(len(seeds), 'seed')})"
    )
    held = all(x > y for x, y in zip(kept["a"], kept["b"], strict=True))
    return ours, "–", "held" if held else "did not hold: a does not keep more in every seed"


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


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or None where either side is constant (r is undefined)."""
    if np.std(xs) == 0 or np.std(ys) == 0:
        return None
    return float(np.corrcoef(xs, ys)[0, 1])


def _tokenizer(run: Run) -> str:
    return json.dumps(run.config.get("tokenizer"), sort_keys=True)


def perplexity_points(rows: dict[str, Row]) -> tuple[list[tuple[str, float, float]], list[str]]:
    """(row label, test perplexity, test BLEU) of every finished run whose perplexity counts
    the same units as most runs' (the same tokenizer: a perplexity over words and one over
    8,000 pieces do not compare), and the labels of the rows left out for counting others."""
    runs = [
        (row.spec.get("label", row.spec.id), run)
        for row in rows.values()
        for run in row.runs
        if run.results.get("test_ppl") is not None
    ]
    if not runs:
        return [], []
    units = collections.Counter(_tokenizer(run) for _, run in runs).most_common(1)[0][0]
    points = [(label, r.results["test_ppl"], r.results["bleu"]) for label, r in runs]
    kept = [p for p, (_, run) in zip(points, runs, strict=True) if _tokenizer(run) == units]
    left = sorted({label for label, run in runs if _tokenizer(run) != units})
    return kept, left


def check_correlation(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """Test perplexity against test BLEU over every finished run with the same tokenizer
    (perplexity_points): Pearson's r <= max_r."""
    points, left = perplexity_points(evidence.rows)
    if len(points) < 3:
        return "–", "–", f"{NOT_TESTABLE} (fewer than 3 finished runs)"
    r = pearson([p[1] for p in points], [p[2] for p in points])
    if r is None:
        return "–", "–", f"{NOT_TESTABLE} (perplexity or BLEU is the same in every run)"
    ours = f"Pearson r = {r:+.2f} over {plural(len(points), 'run')}"
    if left:
        ours += f" (not {', '.join(left)}: another vocabulary)"
    held = "held" if r <= test.max_r else f"did not hold: r > {test.max_r}"
    return ours, "–", held


def check_sharper(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """Row a's attention has lower mean entropy (nats, over the test hypotheses' target
    words) than row b's, in every seed pair."""
    entropies = [
        (ra.results.get("attention_entropy"), rb.results.get("attention_entropy"))
        for ra, rb in seed_pairs(evidence.rows[test.a], evidence.rows[test.b])
    ]
    entropies = [pair for pair in entropies if None not in pair]
    if not entropies:
        return "–", "–", f"{NOT_TESTABLE} (no seed of both rows has finished)"
    ent_a, ent_b = [a for a, _ in entropies], [b for _, b in entropies]
    ours = (
        f"entropy {mean_std(ent_a, '.2f')} vs {mean_std(ent_b, '.2f')} nats "
        f"({plural(len(entropies), 'seed pair')})"
    )
    sharper = all(x < y for x, y in zip(ent_a, ent_b, strict=True))
    return ours, "–", "held" if sharper else "did not hold: not sharper in every seed pair"


def check_unk_gain(test: DictConfig, evidence: Evidence) -> tuple[str, str, str]:
    """Unk replacement raises row a's BLEU: each run's hypotheses after against before it."""
    runs = [
        r for r in evidence.rows[test.a].runs if (r.path / "test.hyp.before_unk_replace").is_file()
    ]
    if not runs:
        return "–", "–", f"{NOT_TESTABLE} (no run with unk replacement has finished)"
    gains, p_values = [], []
    for run in runs:
        gain, p = bootstrap_gain(
            run.lines("test.hyp"),
            run.lines("test.hyp.before_unk_replace"),
            run.lines("test.ref"),
            evidence.n_samples,
        )
        gains.append(gain)
        p_values.append(p)
    before = mean_std([r.results.get("bleu_before_unk_replace") for r in runs], ".2f")
    after = mean_std([r.results["bleu"] for r in runs], ".2f")
    ours = f"{signed_mean_std(gains)} BLEU ({after} vs {before}; {plural(len(runs), 'seed')})"
    return ours, _p_text(p_values), verdict(gains, p_values, evidence.alpha, "seed")


CLAIM_TESTS: dict[str, ClaimTest] = {
    "better": check_better,
    "length_gap": check_length_gap,
    "monotonic": check_monotonic,
    "correlation": check_correlation,
    "sharper": check_sharper,
    "unk_gain": check_unk_gain,
}


_FLOORS: dict[Path, float] = {}  # by run directory: a report asks for each run's more than once


def floor(run: Run) -> float:
    """The run's source-independent test BLEU (nmt.evaluation.metrics.floor_bleu)."""
    if run.path not in _FLOORS:
        lines = (run.lines(name) for name in ("test.src", "test.hyp", "test.ref"))
        _FLOORS[run.path] = floor_bleu(*lines)
    return _FLOORS[run.path]


def converged(run: Run) -> bool:
    """Whether the run stopped on a plateau or at the rate floor, or its last validation was not
    its best; a run stopped by its cap (the epochs, or the update budget of a run trained
    before the protocol) while still improving has not converged."""
    results = run.results
    if results.get("stop_reason") in ("plateau", "rate_floor"):
        return True
    improving = results.get("improving_at_stop", results.get("best_step") == results.get("steps"))
    return not improving


def unconverged(rows: Sequence[Row]) -> str | None:
    """'not converged (...)' naming the rows' runs that had not converged, or None."""
    names = [
        f"{row.spec.label} seed {run.seed}"
        for row in rows
        for run in row.runs
        if not converged(run)
    ]
    if not names:
        return None
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return (
        f"{NOT_CONVERGED} ({plural(len(names), 'run')} stopped at the cap still improving: {shown})"
    )


def unlearned(row: Row, margin: float) -> str | None:
    """'not testable here: ...' when the row's mean test BLEU is within `margin` of its
    source-independent floor (it has not learned to translate), or None."""
    if not row.runs:
        return None
    over = statistics.mean(r.results["bleu"] - floor(r) for r in row.runs)
    if over >= margin:
        return None
    return (
        f"{NOT_TESTABLE}: the baseline has not learned ({row.spec.label} is {over:.2f} BLEU over "
        f"its source-independent floor, under {margin})"
    )


def gate(test: DictConfig, evidence: Evidence, verdict: str) -> str:
    """The verdict, unless the rows behind it cannot give one: a baseline at its floor (a
    comparison with row b) makes the claim not testable here, and a run stopped by its cap
    while still improving makes it not converged; the measured figures stay in the table."""
    if verdict.startswith(NOT_TESTABLE):
        return verdict
    rows = evidence.rows
    if test.kind in ("better", "length_gap") and (
        why := unlearned(rows[test.b], evidence.floor_margin)
    ):
        return why
    involved = [rows[test[k]] for k in ("a", "b") if test.get(k) is not None]
    if test.kind == "correlation":
        involved = list(rows.values())
    return unconverged(involved) or verdict


def claims_table(paper: DictConfig, evidence: Evidence) -> Table:
    """Every claim of the paper with our figure, the p-values and the verdict."""
    lines = []
    for claim in paper.claims:
        ours, p, verdict = CLAIM_TESTS[claim.test.kind](claim.test, evidence)
        verdict = gate(claim.test, evidence, verdict)
        lines.append([str(claim.id), claim.claim, claim.paper, ours, p, verdict])
    header = ["#", "claim", "paper", "ours (mean ± std over seeds)", "p (per seed)", "verdict"]
    return Table(header, lines)
