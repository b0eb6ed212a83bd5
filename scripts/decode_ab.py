#!/usr/bin/env python3
"""Paired decoding comparison on the benchmark's test book (Mark): one saved protocol model,
two variants alternated run by run in one process, so machine drift hits both alike. Prints
each variant's sentences/s, the median ratio and how many hypotheses are identical.

    python scripts/benchmark.py --train-minutes 10 --lr 2e-3 --save-model model.pt
    python scripts/decode_ab.py model.pt --compare packed          # oneDNN packed vs torch's
    python scripts/decode_ab.py model.pt --compare stop --beam 5   # best_finished vs k_finished
    python scripts/decode_ab.py model.pt --compare precision       # decode.precision bf16 vs fp32
    python scripts/decode_ab.py model.pt --compare packed --precision bfloat16
    python scripts/decode_ab.py model.pt --compare workers         # 2 processes vs 1 (2 threads)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import protocol_data, protocol_model, protocol_model_config  # noqa: E402

from nmt.config import PRECISIONS, DecodeConfig, default_cache_dir, defaults  # noqa: E402
from nmt.data.batching import make_batch, sorted_batches  # noqa: E402
from nmt.decoding.search import decode  # noqa: E402
from nmt.evaluation.metrics import bleu  # noqa: E402
from nmt.fast import packed
from nmt.fast.allocator import keep_freed_memory  # noqa: E402
from nmt.fast.parallel import map_items  # noqa: E402

VARIANTS = {  # --compare: the two variants, alternated
    "packed": ("packed", "plain"),
    "stop": ("best_finished", "k_finished"),
    "precision": ("bfloat16", "float32"),
    "workers": ("2 processes", "1 process"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="weights saved by benchmark.py --save-model")
    parser.add_argument("--compare", choices=list(VARIANTS), default="packed")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="float32", help="decode.precision (packed, stop)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="runs of each variant")
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(2)
    corpus, tokenizer, _, _ = protocol_data(default_cache_dir())
    model = protocol_model(protocol_model_config(), tokenizer).eval()
    model.load_state_dict(torch.load(args.model, weights_only=True))
    ids = tokenizer.encode_src(corpus.test.src)
    order = [i for index in sorted_batches([len(s) for s in ids], 64) for i in index]
    batches = [make_batch(ids, None, i) for i in sorted_batches([len(s) for s in ids], 64)]
    refs = [corpus.test.tgt[i] for i in order]

    def run(variant: str) -> tuple[float, list]:
        stop = "best_finished" if variant == "best_finished" else "k_finished"
        length_penalty = "gnmt" if args.beam > 1 else "none"
        decode_cfg = defaults(
            DecodeConfig,
            beam_size=args.beam,
            length_penalty=length_penalty,
            max_len_ratio=0.0,
            max_len_extra=100,
            stop=stop,
            precision=variant if args.compare == "precision" else args.precision,
        )
        workers = 2 if variant == "2 processes" else 1

        def best(k: int) -> list[list[int]]:  # the best hypothesis of each sentence of batch k
            return [
                n[0].ids for n in decode(model, batches[k].src, batches[k].src_mask, decode_cfg)
            ]

        start = time.perf_counter()
        with packed.enabled(variant != "plain"):
            out = [o for batch in map_items(best, len(batches), workers) for o in batch]
        return len(ids) / (time.perf_counter() - start), out

    variants = VARIANTS[args.compare]
    rates: dict[str, list[float]] = {v: [] for v in variants}
    outputs = {}
    for round_ in range(args.rounds):
        for variant in variants if round_ % 2 == 0 else variants[::-1]:
            rate, outputs[variant] = run(variant)
            rates[variant].append(rate)
    first, second = variants
    same = sum(a == b for a, b in zip(outputs[first], outputs[second], strict=True))
    for variant in variants:
        texts = [tokenizer.decode_tgt(o) for o in outputs[variant]]
        pieces = sum(len(o) + 1 for o in outputs[variant])  # </s> included
        print(
            f"{variant}: sent/s {', '.join(f'{r:.1f}' for r in rates[variant])}; "
            f"BLEU {bleu(texts, [refs])[0]:.2f}; {pieces} output pieces"
        )
    ratio = statistics.median(rates[first]) / statistics.median(rates[second])
    print(f"median {first}/{second}: {ratio:.3f}; identical hypotheses: {same} of {len(ids)}")


if __name__ == "__main__":
    main()
