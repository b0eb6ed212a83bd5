"""Trace what a model's attention does while it trains.

    python scripts/trace_attention.py [--every N] NMT_TRAIN_OVERRIDES...

is `nmt-train OVERRIDES +callbacks=trace_attention callbacks.trace_attention.every=N fast=false`:
the plain torch model (whose attention module runs on every decoder call) trains as nmt-train
would, and every N updates (default 10) nmt.training.callbacks.AttentionTrace logs one line and
appends it to RUN_DIR/attention_trace.jsonl: the weights' entropy, largest weight, share of
argmaxes on </s>, the scores' spread and, for local-p, where p_t sits and how saturated its
sigmoid is. The callback's docstring says what each figure means.
"""

from __future__ import annotations

import argparse
import sys

from nmt.cli.train import main as train_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=10, help="updates per line")
    args, overrides = parser.parse_known_args()
    trace = ["+callbacks=trace_attention", f"callbacks.trace_attention.every={args.every}"]
    sys.argv = [sys.argv[0], *overrides, *trace, "fast=false"]
    train_main()


if __name__ == "__main__":
    main()
