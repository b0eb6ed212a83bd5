"""Paired bootstrap resampling (Koehn 2004) through sacrebleu's own implementation, so a p-value
here equals `sacrebleu REF -i BASELINE SYSTEM -m bleu --paired-bs` on the same files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

SEED_VARIABLE = "SACREBLEU_SEED"


@contextlib.contextmanager
def _sacrebleu_seed(seed: int | None) -> Iterator[None]:
    """Set $SACREBLEU_SEED for the duration of the block.

    sacrebleu seeds both the baseline's confidence interval and the paired test from this
    variable (the CLI's only seed control; default 12345); `None` draws entropy from the OS.
    """
    saved = os.environ.get(SEED_VARIABLE)
    os.environ[SEED_VARIABLE] = "None" if seed is None else str(seed)
    try:
        yield
    finally:
        if saved is None:
            del os.environ[SEED_VARIABLE]
        else:
            os.environ[SEED_VARIABLE] = saved


def paired_bootstrap(
    baseline_hyps: Sequence[str],
    system_hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    n_samples: int = 1000,
    seed: int | None = 12345,
) -> dict:
    """Corpus BLEU of two systems and the paired bootstrap p-value of their difference.

    Both systems are scored on the same `n_samples` resamples of the test sentences; the p-value
    is that of the null hypothesis that they are equally good (two-sided, sacrebleu's `bs` test).

    Args:
        baseline_hyps: the baseline's detokenised hypotheses, one per test sentence.
        system_hyps: the other system's hypotheses, line-aligned with `baseline_hyps`.
        refs: reference streams (the primary reference first), each line-aligned.
        n_samples: bootstrap resamples.
        seed: seed of sacrebleu's numpy RNG (the CLI's default is 12345); None: unseeded.

    Returns:
        `baseline_bleu`, `system_bleu`, the bootstrap `baseline_mean`/`system_mean` with the
        half-width of their 95% confidence intervals (`baseline_ci`, `system_ci`), `p_value`,
        `n_samples`, `seed` and sacrebleu's `signature` of the test.
    """
    if len(baseline_hyps) != len(system_hyps):
        raise ValueError(
            f"{len(baseline_hyps)} baseline hypotheses but {len(system_hyps)} system hypotheses"
        )
    with _sacrebleu_seed(seed):
        test = PairedTest(
            [("baseline", list(baseline_hyps)), ("system", list(system_hyps))],
            {"BLEU": BLEU()},
            references=[list(ref) for ref in refs],
            test_type="bs",
            n_samples=n_samples,
        )
        signatures, scores = test()
    name = next(key for key in scores if key != "System")
    baseline, system = scores[name]
    return {
        "baseline_bleu": float(baseline.score),
        "baseline_mean": float(baseline.mean),
        "baseline_ci": float(baseline.ci),
        "system_bleu": float(system.score),
        "system_mean": float(system.mean),
        "system_ci": float(system.ci),
        "p_value": float(system.p_value),
        "n_samples": n_samples,
        "seed": seed,
        "signature": str(signatures[name]),
    }
