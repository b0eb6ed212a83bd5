"""The claim tests of a reproduction's report, on made-up runs whose answer is known."""

import random

from omegaconf import OmegaConf

from nmt.evaluation.runs import Run
from nmt.papers.claims import (
    NOT_TESTABLE,
    Evidence,
    Row,
    check_better,
    check_correlation,
    check_length_gap,
    check_sharper,
    check_unk_gain,
)

WORDS = "le la les un une de du des et est dans pour sur avec maison homme".split()
# 60 test sentences: sources of 3 to 14 words, references of as many French words
SOURCES = [" ".join(["w"] * (3 + i % 12)) for i in range(60)]
REFS = [" ".join(random.Random(i).choices(WORDS, k=len(s.split()))) for i, s in enumerate(SOURCES)]


def garbled(line: str) -> str:
    """The line with every word but the first redrawn (the same way for the same line)."""
    words = line.split()
    return " ".join(words[:1] + random.Random(line).choices(WORDS, k=len(words) - 1))


def fake_run(tmp_path, name: str, seed: int, hyps: list[str]) -> Run:
    path = tmp_path / name / f"seed{seed}"
    path.mkdir(parents=True)
    for suffix, lines in (("src", SOURCES), ("hyp", hyps), ("ref", REFS)):
        (path / f"test.{suffix}").write_text("".join(x + "\n" for x in lines))
    from nmt.evaluation.metrics import bleu

    return Run(path, {"seed": seed}, (), {"bleu": bleu(hyps, [REFS])[0]}, [])


def rows(tmp_path, a_hyps, b_hyps, seeds=(1, 2)) -> dict[str, Row]:
    spec = OmegaConf.create
    return {
        "a": Row(spec({"id": "a"}), [fake_run(tmp_path, "a", s, a_hyps(s)) for s in seeds]),
        "b": Row(spec({"id": "b"}), [fake_run(tmp_path, "b", s, b_hyps(s)) for s in seeds]),
    }


def evidence(found: dict[str, Row], n_samples: int) -> Evidence:
    return Evidence(found, [], 0.05, OmegaConf.create({}), n_samples)


BETTER = OmegaConf.create({"kind": "better", "a": "a", "b": "b"})


def test_a_clearly_better_row_holds_with_a_p_value_per_seed(tmp_path):
    found = rows(tmp_path, lambda s: REFS, lambda s: [garbled(r) for r in REFS])
    ours, p, verdict = check_better(BETTER, evidence(found, 200))
    assert verdict == "held"
    assert ours.startswith("+") and "2 seed pairs" in ours
    assert [float(x) < 0.05 for x in p.split(", ")] == [True, True]


def test_equal_rows_do_not_hold_and_missing_seeds_are_not_testable(tmp_path):
    same = [garbled(r) for r in REFS]
    found = rows(tmp_path, lambda s: same, lambda s: same)
    assert check_better(BETTER, evidence(found, 100))[2] == "did not hold: not better"
    found["b"] = Row(found["b"].spec, [])
    assert check_better(BETTER, evidence(found, 100))[2].startswith(NOT_TESTABLE)


def test_the_length_gap_holds_when_a_keeps_more_of_its_quality_on_long_sources(tmp_path):
    """Retention: a row's BLEU over its floor on long sources as a share of the same on short
    ones. A row right everywhere keeps it all; one garbled on long sources keeps little."""

    def right_where(keep):  # the references where keep(source length), else garbled
        pairs = zip(SOURCES, REFS, strict=True)
        return [r if keep(len(src.split())) else garbled(r) for src, r in pairs]

    def everywhere(seed):
        return REFS

    def short_right(seed):
        return right_where(lambda n: n < 10)

    test = OmegaConf.create(
        {"kind": "length_gap", "a": "a", "b": "b", "short_below": 6, "long_from": 10}
    )
    widening = rows(tmp_path / "w", everywhere, short_right)
    ours, _, verdict = check_length_gap(test, evidence(widening, 100))
    assert verdict == "held" and ours.startswith("over the floor, long sources keep 100% vs")
    narrowing = rows(tmp_path / "n", short_right, everywhere)
    assert check_length_gap(test, evidence(narrowing, 100))[2].startswith("did not hold")
    # a row at its floor on short sources has nothing to keep: no verdict
    at_floor = rows(tmp_path / "f", everywhere, lambda s: ["le"] * len(REFS))
    assert "is at its floor on short sources" in check_length_gap(test, evidence(at_floor, 100))[2]
    test.long_from = 100
    assert check_length_gap(test, evidence(widening, 100))[2].startswith(NOT_TESTABLE)


def with_results(run: Run, **results) -> Run:
    return Run(run.path, run.config, run.overrides, run.results | results, run.metrics)


def test_perplexity_against_bleu_holds_only_for_a_strong_negative_correlation(tmp_path):
    found = rows(tmp_path, lambda s: REFS, lambda s: [garbled(r) for r in REFS])
    test = OmegaConf.create({"kind": "correlation", "max_r": -0.8})

    def with_ppl(ppl_of):  # test_ppl of each run from its BLEU
        return {
            key: Row(
                row.spec, [with_results(r, test_ppl=ppl_of(r.results["bleu"])) for r in row.runs]
            )
            for key, row in found.items()
        }

    ours, _, verdict = check_correlation(test, evidence(with_ppl(lambda b: 100 - b), 10))
    assert verdict == "held" and ours.startswith("Pearson r = -1.00 over 4 runs")
    assert check_correlation(test, evidence(with_ppl(lambda b: b), 10))[2].startswith("did not")
    constant = check_correlation(test, evidence(with_ppl(lambda b: 5.0), 10))
    assert constant[2].startswith(NOT_TESTABLE)
    # a run whose perplexity is over words, not pieces, does not enter the correlation
    words = Run(tmp_path, {"seed": 3, "tokenizer": {"model_type": "word"}}, (), {}, [])
    mixed = with_ppl(lambda b: 100 - b)
    mixed["c"] = Row(OmegaConf.create({"id": "c"}), [with_results(words, bleu=0.0, test_ppl=1.0)])
    ours, _, verdict = check_correlation(test, evidence(mixed, 10))
    assert ours == "Pearson r = -1.00 over 4 runs (not c: another vocabulary)" and verdict == "held"


def test_sharper_needs_lower_entropy_in_every_seed_pair(tmp_path):
    found = rows(tmp_path, lambda s: REFS, lambda s: REFS)
    test = OmegaConf.create({"kind": "sharper", "a": "a", "b": "b"})

    def entropies(a, b):
        return {
            key: Row(
                found[key].spec,
                [
                    with_results(r, attention_entropy=x)
                    for r, x in zip(found[key].runs, values, strict=True)
                ],
            )
            for key, values in (("a", a), ("b", b))
        }

    assert check_sharper(test, evidence(entropies([1.0, 1.1], [1.5, 1.6]), 10))[2] == "held"
    assert check_sharper(test, evidence(entropies([1.0, 1.7], [1.5, 1.6]), 10))[2].startswith(
        "did not hold"
    )


def test_the_unk_gain_compares_each_run_with_its_own_hypotheses_before_replacement(tmp_path):
    found = rows(tmp_path, lambda s: REFS, lambda s: REFS)
    test = OmegaConf.create({"kind": "unk_gain", "a": "a"})
    assert check_unk_gain(test, evidence(found, 100))[2].startswith(NOT_TESTABLE)
    for run in found["a"].runs:
        before = [garbled(r) for r in REFS]
        (run.path / "test.hyp.before_unk_replace").write_text("".join(x + "\n" for x in before))
    ours, p, verdict = check_unk_gain(test, evidence(found, 100))
    assert verdict == "held" and "2 seeds" in ours and len(p.split(", ")) == 2


def test_a_verdict_needs_a_baseline_above_its_floor_and_converged_runs(tmp_path):
    from nmt.papers.claims import NOT_CONVERGED, gate

    shorter = [" ".join(r.split()[:-1]) for r in REFS]  # a baseline that learned, less well
    learned = rows(tmp_path / "learned", lambda s: REFS, lambda s: shorter)
    for row in learned.values():
        row.spec.label = row.spec.id
        for run in row.runs:  # stopped on a plateau: converged
            run.results.update(stop_reason="plateau", improving_at_stop=False)
    assert gate(BETTER, evidence(learned, 50), "held") == "held"
    # one run that its cap stopped while its dev score still improved
    learned["a"].runs[1].results.update(stop_reason="max_epochs", improving_at_stop=True)
    gated = gate(BETTER, evidence(learned, 50), "held")
    assert gated.startswith(NOT_CONVERGED) and "a seed 2" in gated
    # a run trained before the protocol is judged by its best checkpoint: the last one means
    # it was still improving
    learned["a"].runs[1].results.clear()
    learned["a"].runs[1].results.update(bleu=50.0, steps=800, best_step=800)
    assert gate(BETTER, evidence(learned, 50), "held").startswith(NOT_CONVERGED)
    # a baseline that says the same thing whatever the source is at its floor
    same = ["le la les un une de"] * len(REFS)
    unlearned = rows(tmp_path / "unlearned", lambda s: REFS, lambda s: same)
    for row in unlearned.values():
        row.spec.label = row.spec.id
    gated = gate(BETTER, evidence(unlearned, 50), "held")
    assert gated.startswith(f"{NOT_TESTABLE}: the baseline has not learned (b is 0.00 BLEU")
    assert gate(BETTER, evidence(unlearned, 50), f"{NOT_TESTABLE} (x)") == f"{NOT_TESTABLE} (x)"
