"""Scoring a model on a corpus split: perplexity, translation, metrics and the files a run keeps.

`nmt-evaluate checkpoint=PATH [split=test] [data=...]` rebuilds everything from the checkpoint and
writes into its own run directory, never into the training run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import torch

from nmt import files as jsonfile
from nmt.config import DecodeConfig
from nmt.data import Split, n_words
from nmt.data.batching import make_batch, sorted_batches
from nmt.data.specials import EOS
from nmt.data.tokenizer import encode_split
from nmt.decoding.translate import Renderer, to_translation, translate_texts
from nmt.evaluation.metrics import attention_entropy, bleu, corpus_scores
from nmt.evaluation.plots import save_attention
from nmt.models.seq2seq import Seq2Seq

log = logging.getLogger(__name__)


def cut_long_pairs(src_ids: list, tgt_ids: list, limit: int) -> tuple[list, list]:
    """Pairs with a side of more than `limit` ids cut to their first limit - 1 and </s> on that
    side (logged): teacher forcing holds (T, S) attention weights, which one huge pair would
    make too large for memory."""

    def cut(ids: list) -> list:
        return ids if len(ids) <= limit else ids[: limit - 1] + [EOS]

    long = [
        i
        for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True))
        if max(len(s), len(t)) > limit
    ]
    if long:
        log.warning(
            "%d pairs cut to %d pieces a side for perplexity (decode.max_src_len; first: %d)",
            len(long),
            limit,
            long[0] + 1,
        )
    return [cut(s) for s in src_ids], [cut(t) for t in tgt_ids]


@torch.inference_mode()
def mean_loss(
    model: Seq2Seq,
    src_ids: list,
    tgt_ids: list,
    device: torch.device,
    batch_size: int = 64,
    max_len: int | None = None,
) -> float:
    """Teacher-forced cross-entropy per target token (log of the perplexity); with `max_len`,
    longer pairs are cut first (`cut_long_pairs`)."""
    if max_len is not None:
        src_ids, tgt_ids = cut_long_pairs(src_ids, tgt_ids, max_len)
    model.eval()
    total, n = 0.0, 0
    for index in sorted_batches([len(s) for s in src_ids], batch_size):
        batch = make_batch(src_ids, tgt_ids, index).to(device)
        total += float(model.loss(batch))
        n += batch.n_tokens
    return total / max(n, 1)


def score_split(
    model: Seq2Seq,
    tokenizer,
    split: Split,
    decode: DecodeConfig,
    device: torch.device,
    cache: Path,
) -> tuple[list[str], dict, list[str] | None]:
    """Translate a split and score it. Returns the hypotheses, the scores of results.json and,
    with decode.unk_replace, the same hypotheses before unknown words were replaced."""
    src_ids, tgt_ids = encode_split(tokenizer, split, cache)
    loss = mean_loss(model, src_ids, tgt_ids, device, decode.batch_size, decode.max_src_len)
    texts, hyps = translate_texts(model, tokenizer, split.src, decode, device)
    scores = corpus_scores(split.src, texts, [split.tgt, *split.refs])
    scores |= {
        "test_ppl": math.exp(min(loss, 50.0)),
        "test_loss": loss,
        "attention_entropy": attention_entropy([h.attention for h in hyps]),
        "bleu_before_unk_replace": None,
    }
    before = None
    if decode.unk_replace:  # the same hypotheses with their <unk>s left as they are
        plain = Renderer(tokenizer, dataclasses.replace(decode, unk_replace=False))
        before = [plain(h, line) for h, line in zip(hyps, split.src, strict=True)]
        scores["bleu_before_unk_replace"] = bleu(before, [split.tgt])[0]
    return texts, scores, before


def write_split_files(
    run_dir: Path, name: str, split: Split, hyps: list[str], before_unk: list[str] | None = None
) -> None:
    """{name}.src, {name}.hyp, {name}.ref and {name}.ref.N, line-aligned, and
    {name}.hyp.before_unk_replace where unknown words were replaced."""
    files = {f"{name}.src": split.src, f"{name}.hyp": hyps, f"{name}.ref": split.tgt}
    files |= {f"{name}.ref.{k}": ref for k, ref in enumerate(split.refs, start=1)}
    if before_unk is not None:
        files[f"{name}.hyp.before_unk_replace"] = before_unk
    for filename, lines in files.items():
        jsonfile.write_text(run_dir / filename, "".join(line + "\n" for line in lines))


def heatmap_sentences(split: Split, count: int = 4) -> list[int]:
    """The same few test sentences for every run: the first `count` of 8 to 25 words."""
    return [i for i, s in enumerate(split.src) if 8 <= n_words(s) <= 25][:count]


def save_heatmaps(
    directory: Path,
    model: Seq2Seq,
    tokenizer,
    split: Split,
    decode: DecodeConfig,
    device: torch.device,
) -> None:
    """Attention heatmaps (and weights) of a few fixed sentences of `split` into `directory`
    (and each head's, with multi-head attention)."""
    lines = [split.src[i] for i in heatmap_sentences(split)]
    texts, hyps = translate_texts(model, tokenizer, lines, decode, device)
    found = zip(hyps, lines, texts, strict=True)
    save_attention(
        directory, [to_translation(tokenizer, *f, attention=True, model=model) for f in found]
    )


def bleu_line(scores: dict) -> str:
    """'16.32, 21.77 with 3 references (signature)': what nmt-train and nmt-evaluate print."""
    multi = scores["bleu_multi_ref"]
    multi_text = "" if multi is None else f", {multi:.2f} with {scores['n_refs']} references"
    return f"{scores['bleu']:.2f}{multi_text} ({scores['bleu_signature']})"


def write_results(path: Path, results: dict) -> None:
    """results.json, atomically."""
    jsonfile.write_text(path, jsonfile.dumps(results, indent=2) + "\n")
