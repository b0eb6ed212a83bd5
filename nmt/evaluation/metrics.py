"""Corpus metrics through sacrebleu (BLEU with its signature, chrF, TER) and BLEU by source
length in words (Bahdanau 2014 Figure 2, Luong 2015 Figure 6)."""

from __future__ import annotations

import torch
from sacrebleu.metrics import BLEU, CHRF, TER

from nmt.data import n_words

# [lo, hi) in source words; the last bucket is open.
BUCKETS = ((0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, None))


def bucket_name(lo: int, hi: int | None) -> str:
    """A source-length bucket's name: `lo-hi`, or `lo+` for the open last one."""
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


def bleu(hyps: list[str], refs: list[list[str]]) -> tuple[float, str]:
    """Corpus BLEU with sacrebleu's defaults (13a, mixed case) and its signature.

    Args:
        refs: reference streams, each line-aligned with hyps.
    """
    metric = BLEU()
    return metric.corpus_score(hyps, refs).score, str(metric.get_signature())


def bleu_by_length(sources: list[str], hyps: list[str], refs: list[str]) -> list[dict]:
    """BLEU of each source-length bucket, with its sentence count (empty buckets: bleu null)."""
    rows = []
    for lo, hi in BUCKETS:
        keep = [
            i for i, s in enumerate(sources) if n_words(s) >= lo and (hi is None or n_words(s) < hi)
        ]
        score = bleu([hyps[i] for i in keep], [[refs[i] for i in keep]])[0] if keep else None
        rows.append({"bucket": bucket_name(lo, hi), "n": len(keep), "bleu": score})
    return rows


FLOOR_BUCKET = 20  # sentences of neighbouring source lengths whose references are shuffled


def shuffled_references(sources: list[str], refs: list[str], seed: int = 0) -> list[str]:
    """Each sentence's reference replaced by another sentence's of about the same source length:
    sentences sorted by source length in words, cut into buckets of FLOOR_BUCKET, and each
    bucket's references rotated along a random order (a fixed `seed`), so that none keeps its
    own (a lone sentence at the end joins the bucket before it)."""
    order = sorted(range(len(sources)), key=lambda i: (n_words(sources[i]), i))
    generator = torch.Generator().manual_seed(seed)
    shuffled = list(refs)
    buckets = [order[i : i + FLOOR_BUCKET] for i in range(0, len(order), FLOOR_BUCKET)]
    if len(buckets) > 1 and len(buckets[-1]) < 2:
        buckets[-2] += buckets.pop()
    for bucket in buckets:
        drawn = [bucket[int(k)] for k in torch.randperm(len(bucket), generator=generator)]
        for i, j in zip(drawn, drawn[1:] + drawn[:1], strict=True):
            shuffled[i] = refs[j]
    return shuffled


def floor_bleu(sources: list[str], hyps: list[str], refs: list[str], seed: int = 0) -> float:
    """Source-independent BLEU: the hypotheses scored against the references of other sentences
    of about the same length (`shuffled_references`). What a model earns without reading its
    source (frequent words, the usual length); BLEU near it means the model has not learned to
    translate."""
    return bleu(hyps, [shuffled_references(sources, refs, seed)])[0]


def corpus_scores(sources: list[str], hyps: list[str], refs: list[list[str]]) -> dict:
    """All test scores of a run's results.json that come from text.

    Args:
        refs: the primary reference stream first, then any extra references.
    """
    single, signature = bleu(hyps, refs[:1])
    multi = bleu(hyps, refs)[0] if len(refs) > 1 else None
    return {
        "bleu": single,
        "bleu_signature": signature,
        "bleu_multi_ref": multi,
        "n_refs": len(refs),
        "chrf": CHRF().corpus_score(hyps, refs[:1]).score,
        "ter": TER().corpus_score(hyps, refs[:1]).score,
        "bleu_by_length": bleu_by_length(sources, hyps, refs[0]),
    }


def attention_entropy(weights: list[torch.Tensor]) -> float:
    """Sharpness of attention: the mean entropy (nats) of each output step's weights over the
    source, renormalised first (local-p weights need not sum to 1).

    Args:
        weights: one (T_i, S) tensor per sentence, zeros past its source length.
    """
    entropies = []
    for w in weights:
        p = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
        entropies.append(-(p * p.clamp_min(1e-12).log()).sum(-1))
    return float(torch.cat(entropies).mean()) if entropies else 0.0
