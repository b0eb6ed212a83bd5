"""The report's attention heatmaps: each heatmap row's first run on the same test verses,
merged from pieces into words, and the monotonicity of the first row's alignments."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nmt.data import n_words
from nmt.evaluation.alignment import monotonicity, word_weights
from nmt.evaluation.plots import attention_heatmap
from nmt.papers.claims import Row


def alignment_verses(lines: list[str], spec: DictConfig) -> list[int]:
    return [i for i, s in enumerate(lines) if spec.min_words <= n_words(s) <= spec.max_words]


def heatmap_section(paper: DictConfig, rows: dict[str, Row], out: Path) -> tuple[list, list]:
    """Heatmaps of each heatmap row's first run on the same first `count` verses, and the
    monotonicity of the first row's attention over every verse of the given lengths."""
    spec = paper.report.heatmaps
    blocks: list = [
        f"Attention on test verses of {spec.min_words}-{spec.max_words} source words (each "
        "row's first seed, best checkpoint, its own search); words are merged from their pieces "
        "(a source word sums its pieces' weights, a target word averages its pieces' rows). "
        "White = 1, black = 0."
    ]
    measures: list = []
    for n, row_id in enumerate(spec.rows):
        row = rows[row_id]
        if not row.runs:
            blocks.append(f"{row.spec.label} has no finished run yet.")
            continue
        sources = row.runs[0].lines("test.src")
        chosen = alignment_verses(sources, spec)
        if not chosen:
            return [f"No test verse of {spec.min_words}-{spec.max_words} words."], []
        # the first row's every verse gives the monotonicity; the others only their heatmaps
        chosen = chosen if n == 0 else chosen[: spec.count]
        name = "heatmap" if len(spec.rows) == 1 else f"heatmap_{row_id}"
        row_blocks, row_measures = row_heatmaps(row, sources, chosen, spec.count, out / name)
        blocks += row_blocks
        measures += row_measures if n == 0 else []
    return blocks, measures


def row_heatmaps(
    row: Row, sources: list[str], chosen: list[int], count: int, stem: Path
) -> tuple[list, list]:
    """The attention of the row's first run on the `chosen` verses: heatmaps of the first
    `count` (STEM_1.png ...) and the monotonicity of each."""
    import torch

    from nmt.config import DecodeConfig, typed
    from nmt.decoding.translate import load_model, translate_texts

    run = row.runs[0]
    device = torch.device("cpu")
    model, tokenizer, saved = load_model(str(run.path / "checkpoints" / "best.pt"), device)
    decode = typed(DecodeConfig, DictConfig(saved["config"]["decode"]), "decode")
    lines = [sources[i] for i in chosen]
    with torch.no_grad():
        _, hyps = translate_texts(model, tokenizer, lines, decode, device)
    blocks: list = [f"{row.spec.label} (seed {run.seed}, {decode.beam_size}-beam search):"]
    measures = []
    for k, (line, hyp) in enumerate(zip(lines, hyps, strict=True)):
        src = tokenizer.src_tokens(line)
        tgt = tokenizer.tgt_tokens(hyp.ids) + ["</s>"]
        words, src_words, tgt_words = word_weights(hyp.attention[:, : len(src)].numpy(), src, tgt)
        measures.append(monotonicity(words[:-1, :-1]))  # without </s> on either axis
        if k < count:
            title = f"{row.spec.label}: line {chosen[k] + 1} of test.src"
            path = stem.with_name(f"{stem.name}_{k + 1}.png")
            blocks.append(attention_heatmap(words, src_words, tgt_words, path, title))
    return blocks, measures
