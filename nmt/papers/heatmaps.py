"""The report's attention heatmaps: each heatmap row's first run on the same test verses,
merged from pieces into words, and the monotonicity of the first row's alignments.

A run's alignments are computed once from its best checkpoint and kept beside it in
alignments.json (the word-level weights of the first `count` verses, the monotonicity of every
chosen verse), so the report can be written again from a run's record, without checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from nmt import files
from nmt.data import n_words
from nmt.evaluation.alignment import Monotonicity, monotonicity, word_weights
from nmt.evaluation.plots import attention_heatmap
from nmt.evaluation.runs import Run
from nmt.papers.claims import Row

ALIGNMENTS = "alignments.json"


def alignment_verses(lines: list[str], spec: DictConfig) -> list[int]:
    """The test lines whose source has the layout's number of words."""
    return [i for i, s in enumerate(lines) if spec.min_words <= n_words(s) <= spec.max_words]


def _selection(spec: DictConfig) -> dict:
    return {k: int(spec[k]) for k in ("count", "min_words", "max_words")}


def alignments(run: Run, spec: DictConfig, allow: Sequence[str] = ()) -> dict | None:
    """The run's alignments for the heatmap `spec`: read from its alignments.json, or computed
    from its best checkpoint (whose config may build nmt's own classes and those under `allow`)
    and saved there; None when it has neither (or no chosen verse)."""
    path = run.path / ALIGNMENTS
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("selection") == _selection(spec):
            return saved
    if not (run.path / "checkpoints" / "best.pt").is_file():
        return None
    sources = run.lines("test.src")
    chosen = alignment_verses(sources, spec)
    if not chosen:
        return None
    computed = compute_alignments(run, sources, chosen, int(spec.count), allow)
    computed["selection"] = _selection(spec)
    files.write_text(path, files.dumps(computed) + "\n")
    return computed


def compute_alignments(
    run: Run, sources: list[str], chosen: list[int], count: int, allow: Sequence[str] = ()
) -> dict:
    """Translate the `chosen` test verses with the run's best checkpoint and its own search:
    the word-level weights and words of the first `count`, the monotonicity of all."""
    import torch

    from nmt.config import DecodeConfig, typed
    from nmt.decoding.translate import load_model, translate_texts

    device = torch.device("cpu")
    best = str(run.path / "checkpoints" / "best.pt")
    model, tokenizer, saved = load_model(best, device, allow_targets=allow)
    decode = typed(DecodeConfig, DictConfig(saved["config"]["decode"]), "decode")
    lines = [sources[i] for i in chosen]
    with torch.no_grad():
        _, hyps = translate_texts(model, tokenizer, lines, decode, device)
    verses, measures = [], []
    for k, (line, hyp) in enumerate(zip(lines, hyps, strict=True)):
        src = tokenizer.src_tokens(line)
        tgt = tokenizer.tgt_tokens(hyp.ids) + ["</s>"]
        words, src_words, tgt_words = word_weights(hyp.attention[:, : len(src)].numpy(), src, tgt)
        m = monotonicity(words[:-1, :-1])  # without </s> on either axis
        measures.append({"rho": m.rho, "backward": m.backward})
        if k < count:
            verses.append(
                {
                    "line": chosen[k] + 1,
                    "source": src_words,
                    "output": tgt_words,
                    "weights": [[round(float(w), 4) for w in r] for r in words],
                }
            )
    return {"beam_size": decode.beam_size, "verses": verses, "measures": measures}


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
    measures: list[Monotonicity] = []
    for n, row_id in enumerate(spec.rows):
        row = rows[row_id]
        if not row.runs:
            blocks.append(f"{row.spec.label} has no finished run yet.")
            continue
        run = row.runs[0]
        found = alignments(run, spec)
        if found is None:
            blocks.append(
                f"{row.spec.label} (seed {run.seed}): no alignments (neither {ALIGNMENTS} nor "
                f"checkpoints/best.pt in {run.path}, or no test verse of {spec.min_words}-"
                f"{spec.max_words} words)."
            )
            continue
        name = "heatmap" if len(spec.rows) == 1 else f"heatmap_{row_id}"
        blocks.append(f"{row.spec.label} (seed {run.seed}, {found['beam_size']}-beam search):")
        for k, verse in enumerate(found["verses"], start=1):
            title = f"{row.spec.label}: line {verse['line']} of test.src"
            path = out / f"{name}_{k}.png"
            blocks.append(
                attention_heatmap(verse["weights"], verse["source"], verse["output"], path, title)
            )
        if n == 0:  # the first row's every verse gives the monotonicity
            measures = [Monotonicity(m["rho"], m["backward"]) for m in found["measures"]]
    return blocks, measures
