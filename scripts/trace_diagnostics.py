"""Trace the first updates of paper=diagnostics' rows, and tabulate the traces.

    python scripts/trace_diagnostics.py [--steps 300] [--every 10] [--out DIR] [ROW ...]

trains each row (all of them by default) as `nmt-reproduce paper=diagnostics` does at scale=cpu,
seed 1, for `--steps` updates under the training callback nmt.training.callbacks.AttentionTrace
(`+callbacks=trace_attention fast=false`), in outputs/traces/ROW-TIME; then copies each run's
attention_trace.jsonl to DIR/traces/ROW.jsonl (default DIR: docs/results/diagnostics) and writes
DIR/traces.md, a table a row of what its attention did at chosen updates. A row whose trace is
already in DIR/traces is not trained again (delete its file to redo it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from nmt.config import CONFIG_DIR
from nmt.evaluation.render import Table, to_markdown
from nmt.papers.plan import row_overrides
from nmt.training.callbacks import TRACE_FILE

SHOWN = (10, 20, 50, 100, 200, 300, 500, 1000)  # the updates traces.md shows, where traced
FIGURES = (
    "entropy",
    "max_weight",
    "on_eos",
    "score_std",
    "soft_entropy",
    "p_rel",
    "p_logit",
    "p_corr",
)


def trace(row, paper, steps: int, every: int) -> Path:
    """Train `row` for `steps` updates under the trace; its run directory."""
    run_dir = Path("outputs/traces") / f"{row.id}-{time.strftime('%Y%m%d-%H%M%S')}"
    overrides = [
        *row_overrides(paper, row, "cpu", []),
        "seed=1",
        f"trainer.max_steps={steps}",
        f"trainer.valid_every={steps}",  # one validation, at the end
        "decode=greedy",
        "+callbacks=trace_attention",
        f"callbacks.trace_attention.every={every}",
        "fast=false",
        f"hydra.run.dir={run_dir}",
    ]
    print(f"{row.id}: nmt-train {' '.join(overrides)}", flush=True)
    subprocess.run([sys.executable, "-m", "nmt.train", *overrides], check=True)
    return run_dir


def table(lines: list[dict]) -> Table:
    """The figures a trace has, at the SHOWN updates it reached."""
    figures = [f for f in FIGURES if any(f in line for line in lines)]
    rows = []
    for line in lines:
        if line["step"] in SHOWN or line is lines[-1]:
            rows.append(
                [str(line["step"])] + [f"{line[f]:.3f}" if f in line else "–" for f in figures]
            )
    return Table(["update", *figures], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="*", help="row ids of paper=diagnostics (default: all)")
    parser.add_argument("--steps", type=int, default=300, help="updates a row trains")
    parser.add_argument("--every", type=int, default=10, help="updates per trace line")
    parser.add_argument("--out", type=Path, default=Path("docs/results/diagnostics"))
    args = parser.parse_args()
    paper = OmegaConf.load(Path(CONFIG_DIR) / "paper" / "diagnostics.yaml")
    known = [row.id for row in paper.rows]
    if unknown := [r for r in args.rows if r not in known]:
        parser.error(
            f"not rows of paper=diagnostics: {', '.join(unknown)} (rows: {', '.join(known)})"
        )
    traces = args.out / "traces"
    traces.mkdir(parents=True, exist_ok=True)
    sections = []
    for row in paper.rows:
        kept = traces / f"{row.id}.jsonl"
        if row.id in (args.rows or known) and not kept.is_file():
            run_dir = trace(row, paper, args.steps, args.every)
            kept.write_text((run_dir / TRACE_FILE).read_text())
        if kept.is_file():
            lines = [json.loads(line) for line in kept.read_text().splitlines()]
            sections.append((f"{row.label} ({row.id})", [table(lines)]))
    intro = (
        "What each row's attention did in its first updates, seed 1, as paper=diagnostics "
        "trains it (`python scripts/trace_diagnostics.py` made these; the figures are means "
        "over the training batches since the line before, nmt/training/callbacks.py says what "
        "each is, and traces/ROW.jsonl has every line)."
    )
    page = to_markdown("Attention traces", [("How these were made", [intro]), *sections])
    (args.out / "traces.md").write_text(page)
    print(f"wrote {args.out / 'traces.md'}")


if __name__ == "__main__":
    main()
