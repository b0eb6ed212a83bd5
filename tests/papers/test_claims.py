"""The claim tests of a reproduction's report, on made-up runs whose answer is known."""

import random

from omegaconf import OmegaConf

from nmt.evaluation.runs import Run
from nmt.papers.claims import NOT_TESTABLE, Evidence, Row, check_better, check_length_gap

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


def test_the_length_gap_holds_only_when_it_widens(tmp_path):
    def right_where(keep):  # the references where keep(source length), else garbled
        pairs = zip(SOURCES, REFS, strict=True)
        return [r if keep(len(src.split())) else garbled(r) for src, r in pairs]

    def long_right(seed):
        return right_where(lambda n: n >= 10)

    def short_right(seed):
        return right_where(lambda n: n < 10)

    test = OmegaConf.create(
        {"kind": "length_gap", "a": "a", "b": "b", "short_below": 6, "long_from": 10}
    )
    widening = rows(tmp_path / "w", long_right, short_right)
    assert check_length_gap(test, evidence(widening, 100))[2] == "held"
    narrowing = rows(tmp_path / "n", short_right, long_right)
    assert check_length_gap(test, evidence(narrowing, 100))[2].startswith("did not hold")
    test.long_from = 100
    assert check_length_gap(test, evidence(widening, 100))[2].startswith(NOT_TESTABLE)
