"""PNG figures: attention heatmaps (Bahdanau 2014 Figure 3, Luong 2015 Figure 7), BLEU by
sentence length (Bahdanau Figure 2, Luong Figure 6), learning curves and dev perplexity against
test BLEU (Luong Figure 5's question: does lower perplexity mean better translations?), and
`save_attention`, the heatmaps and weights of found translations.

Figures are built with matplotlib's object API (`Figure` on the Agg canvas), never pyplot, so no
global figure state or display backend is involved and each call frees its figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from nmt import files

if TYPE_CHECKING:
    from nmt.decoding.translate import Translation

DPI = 110
LINESTYLES = ("-", "--", ":", "-.")


def _as_array(weights: Any) -> np.ndarray:
    """A numpy float array from an array, list or torch tensor (without importing torch)."""
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    return np.asarray(weights, dtype=float)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    files.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight"))
    return path


def attention_heatmap(
    weights: Any,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Attention weights of one sentence as a grayscale heatmap (white = 1, black = 0).

    Args:
        weights: (T, S) array or tensor; row t is the distribution used to predict target
            token t (the final `</s>` included), column s a source token.
        src_tokens: the S source tokens, shown on the x axis.
        tgt_tokens: the T target tokens, shown on the y axis.
        path: the PNG to write.
        title: shown above the plot.

    Returns:
        The path written.
    """
    weights = _as_array(weights)
    if weights.shape != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(
            f"attention weights of shape {weights.shape} do not match "
            f"{len(tgt_tokens)} target x {len(src_tokens)} source tokens"
        )
    n_tgt, n_src = weights.shape
    fig = Figure(figsize=(min(2.5 + 0.32 * n_src, 30.0), min(1.5 + 0.32 * n_tgt, 30.0)))
    ax = fig.add_subplot()
    image = ax.imshow(weights, cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(n_src), labels=list(src_tokens), rotation=90, fontsize=8)
    ax.set_yticks(range(n_tgt), labels=list(tgt_tokens), fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    return _save(fig, path)


def _bucket_start(name: str) -> int:
    return int(name.rstrip("+").split("-")[0])


def bleu_by_length_plot(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path
) -> Path:
    """Test BLEU per source-length bucket, one line per run (empty buckets leave a gap).

    Args:
        curves: label -> a run's `bleu_by_length` list from results.json, each item
            `{"bucket": "10-20", "n": 123, "bleu": 21.4}` (`bleu` None for an empty bucket).
        path: the PNG to write.

    Returns:
        The path written.
    """
    counts: dict[str, int] = {}
    for rows in curves.values():
        for row in rows:
            counts.setdefault(row["bucket"], row["n"])
    buckets = sorted(counts, key=_bucket_start)
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    for label, rows in curves.items():
        by_bucket = {row["bucket"]: row["bleu"] for row in rows}
        ys = [math.nan if by_bucket.get(b) is None else by_bucket[b] for b in buckets]
        ax.plot(range(len(buckets)), ys, marker="o", label=label)
    ax.set_xticks(range(len(buckets)), labels=[f"{b}\n(n={counts[b]})" for b in buckets])
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("test BLEU")
    ax.set_title("BLEU by source sentence length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _series(records: Sequence[Mapping[str, Any]], x: str, y: str) -> tuple[list, list]:
    """The (x, y) points of the records where both are present."""
    points = [(r[x], r[y]) for r in records if r.get(x) is not None and r.get(y) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _styles(labels: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, dict]:
    """Colour and line style per label: the given colours (labels sharing one, e.g. the seeds
    of a variant, get different line styles), else matplotlib's colour cycle."""
    styles: dict[str, dict] = {}
    used: dict[str, int] = {}
    for i, label in enumerate(labels):
        color = colors[label] if colors and label in colors else f"C{i % 10}"
        styles[label] = {"color": color, "linestyle": LINESTYLES[used.get(color, 0) % 4]}
        used[color] = used.get(color, 0) + 1
    return styles


def _plain_log_axis(axis: Any) -> None:
    """Log-scale tick labels as plain numbers (30, 40, 60) rather than 3 x 10^1."""
    axis.set_major_formatter(LogFormatter())
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def learning_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    colors: Mapping[str, str] | None = None,
    by_time: bool = True,
) -> Path:
    """Dev perplexity and dev BLEU against training steps and wall-clock time (2 x 2 panels;
    without `by_time`, against steps only: 1 x 2).

    Args:
        runs: label -> the run's metrics.jsonl records (dicts with `step`, `elapsed_s`,
            `dev_ppl`, `dev_bleu`; a null `dev_bleu` is skipped).
        path: the PNG to write.
        colors: label -> matplotlib colour, e.g. one per variant for all its seeds.
        by_time: also plot against wall-clock time (which other work on the machine stretches).

    Returns:
        The path written.
    """
    if by_time:
        fig = Figure(figsize=(11, 7.5), layout="constrained")
        axes = fig.subplots(2, 2)
        panels = [
            (axes[0, 0], "step", "dev_ppl"),
            (axes[0, 1], "elapsed_s", "dev_ppl"),
            (axes[1, 0], "step", "dev_bleu"),
            (axes[1, 1], "elapsed_s", "dev_bleu"),
        ]
    else:
        fig = Figure(figsize=(11, 4.5), layout="constrained")
        axes = fig.subplots(1, 2)
        panels = [(axes[0], "step", "dev_ppl"), (axes[1], "step", "dev_bleu")]
    styles = _styles(list(runs), colors)
    for ax, x, y in panels:
        for label, records in runs.items():
            xs, ys = _series(records, x, y)
            if x == "elapsed_s":
                xs = [t / 60 for t in xs]  # minutes read better than seconds for real runs
            ax.plot(xs, ys, marker=".", label=label, **styles[label])
        ax.set_xlabel("training step" if x == "step" else "wall-clock (min)")
        ax.set_ylabel("dev perplexity" if y == "dev_ppl" else "dev BLEU")
        if y == "dev_ppl" and any(ax.get_lines()):
            ax.set_yscale("log")
            _plain_log_axis(ax.yaxis)
        ax.grid(alpha=0.3)
    handles, labels = panels[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    return _save(fig, path)


def ppl_vs_bleu(
    points: Sequence[tuple[str, float, float]],
    path: str | Path,
    *,
    colors: Mapping[str, str] | None = None,
    xlabel: str = "dev perplexity (last validation)",
) -> Path:
    """A perplexity against test BLEU, one labelled point per run.

    Args:
        points: (label, perplexity, test BLEU) per run.
        path: the PNG to write.
        colors: label -> matplotlib colour, e.g. one per variant for all its seeds.
        xlabel: which perplexity it is.

    Returns:
        The path written.
    """
    fig = Figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    styles = _styles([p[0] for p in points], colors)
    for label, ppl, score in points:
        ax.scatter([ppl], [score], color=styles[label]["color"])
        ax.annotate(label, (ppl, score), xytext=(4, 4), textcoords="offset points", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test BLEU")
    ax.set_title(f"{xlabel.split(' (')[0].capitalize()} vs test BLEU")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_attention(
    directory: Path, translations: list[Translation], numbers: list[int] | None = None
) -> None:
    """{i}.json (tokens and weights) and {i}.png (heatmap) for every translation made with its
    attention, and with multi-head attention each head's weights in the json ("heads") and
    heatmap ({i}.head{h}.png); i is its line's number in `numbers` (its input line), else its
    position."""
    directory.mkdir(parents=True, exist_ok=True)
    numbers = list(range(len(translations))) if numbers is None else numbers
    for i, found in zip(numbers, translations, strict=True):
        if found.attention is None or found.source_tokens is None:
            raise ValueError("save_attention: a translation made without attention=True")
        tgt = [*found.tokens, "</s>"]
        record = {"source": found.source_tokens, "target": tgt, "weights": found.attention.tolist()}
        if found.heads is not None:
            record["heads"] = found.heads.tolist()
        files.write_text(directory / f"{i:04d}.json", files.dumps(record))
        attention_heatmap(found.attention, found.source_tokens, tgt, directory / f"{i:04d}.png")
        for h, weights in enumerate([] if found.heads is None else found.heads):
            path = directory / f"{i:04d}.head{h}.png"
            attention_heatmap(weights, found.source_tokens, tgt, path)
