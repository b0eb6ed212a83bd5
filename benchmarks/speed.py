#!/usr/bin/env python3
"""Speed benchmark on the peer protocol (docs/performance.md, Protocol): English (WEB) -> French
(Segond) Bible verses, test = Mark, dev = Ruth + Philemon, joint SentencePiece BPE 8000, pairs of
at most 50 pieces a side; embeddings 256, 1-layer bidirectional LSTM encoder 256 per direction,
1-layer LSTM decoder 512, Luong general attention with input feeding, dropout 0.2, Adam 1e-3
(fused, as optim=adam), clip 5, batches of 64 sentences.

Speed: it trains for --steps updates after --warmup and prints and writes (--out) as JSON the
target and source+target tokens/s (median over steps), padding fraction, peak RSS, the model's
FLOPs per target token and the fraction of a matmul peak sampled between those steps (in the
training's precision). Time to quality (--train-minutes M, --train-steps N): a fresh model trains
for M minutes of wall clock or N updates (--lr, --batch, --batch-tokens), then its dev loss and its
greedy and beam-5 BLEU and sentences/s on Mark are measured (beam 5 twice: nmt's default stop, K
finished hypotheses, and OpenNMT-py's, the step's best extension ends). Without it, decoding speed
is measured with the untrained model. --precision bfloat16 trains both under autocast
(trainer.precision) and samples a bfloat16 peak as well. --peers DIR runs the peers' scripts of
that folder (its interface: docs/performance.md, Protocol) one after the other (--peer-systems) and
prints nmt and the peers side by side with the ratios; with --paired-rounds N it then decodes Mark
N more times with nmt's model and OpenNMT-py's checkpoint, alternated in fresh processes, and
prints the median of the per-round ratios, then N rounds more with nmt decoding OpenNMT-py's
checkpoint too, so that both search the same model (benchmarks/decode_vs_peer.py).
--decode-precision float32 bfloat16 decodes Mark in each decode.precision in turn;
--decode-workers 2 decodes in two 1-thread processes (decode.workers) instead of one 2-thread
process. --reference runs the plain torch model, without the fast layer. A benchmark, not a
test: compare figures within one run.

    python benchmarks/speed.py --steps 300 --out bench.json
    python benchmarks/speed.py --train-minutes 10 --peers PEERS --minutes 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from nmt.config import (
    CONFIG_DIR,
    PRECISIONS,
    DecodeConfig,
    TokenizerConfig,
    TrainerConfig,
    default_cache_dir,
    defaults,
)
from nmt.data.batching import epoch_batches, make_batch
from nmt.data.bible import load_bible
from nmt.data.spm import Tokenizer
from nmt.decoding.translate import translate_texts
from nmt.evaluation.metrics import bleu
from nmt.evaluation.scoring import mean_loss
from nmt.fast import packed
from nmt.fast.allocator import keep_freed_memory
from nmt.models.build import build_model
from nmt.models.seq2seq import count_parameters
from nmt.training.step import train_step

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_peer import compare, peer_dirs, summary  # noqa: E402

PROTOCOL = [
    "model=luong",
    "model/encoder=bilstm",
    "model.encoder.num_layers=1",
    "model.emb_size=256",
    "model.hidden_size=256",
    "model/attention=luong_general",
    "model.decoder.input_feed=true",
    "model.encoder.dropout=0.2",
    "model.decoder.dropout=0.2",
    "model.init=uniform",
]


def protocol_data(cache: Path):
    corpus = load_bible(src="4", tgt="l", extra_refs=[], dev_books=[8, 57], test_books=[41])
    tokenizer = Tokenizer.train(corpus, defaults(TokenizerConfig, vocab_size=8000), cache)
    src, tgt = tokenizer.encode_src(corpus.train.src), tokenizer.encode_tgt(corpus.train.tgt)
    keep = [i for i in range(len(src)) if len(src[i]) - 1 <= 50 and len(tgt[i]) - 2 <= 50]
    return corpus, tokenizer, [src[i] for i in keep], [tgt[i] for i in keep]


def protocol_model_config():
    """The `model` node of the protocol model."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=PROTOCOL).model


def protocol_model(model_cfg, tokenizer, fast: bool = True):
    """The protocol's model, with the fast CPU layer unless `fast` is false (the reference)."""
    model = build_model(
        model_cfg, src_vocab_size=tokenizer.src_vocab_size, tgt_vocab_size=tokenizer.tgt_vocab_size
    )
    if fast:
        from nmt.fast import accelerate

        accelerate(model)
    return model


def product_sampler(
    m: int, k: int, n: int, onednn: bool, dtype: torch.dtype = torch.float32
) -> Callable[[], float] | None:
    """A function that runs one (m, k) x (k, n) product in `dtype` and returns its GFLOP/s:
    torch.mm, or oneDNN with the weight packed once (float32 only; None where this build lacks
    it)."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    if onednn:
        if not packed.available():
            return None
        pack = packed.Pack().get(lambda: (b.t(), None), b)

        def product():
            return packed.linear(a, pack)

    else:

        def product():
            return torch.mm(a, b)

    for _ in range(3):
        product()

    def sample() -> float:
        start = time.perf_counter()
        product()
        return 2 * m * k * n / (time.perf_counter() - start) / 1e9

    return sample


def matmul_peak(threads: int) -> dict:
    """Median float32 matrix-product rates on a large square shape and on the model's 64-row
    output layer: torch.mm (the issue's peak), and oneDNN with the weight packed once (the
    decoding path of nmt/packed.py), which is faster on this kind of machine."""

    def rate(m: int, k: int, n: int, repeats: int, onednn: bool) -> float | None:
        sample = product_sampler(m, k, n, onednn)
        return None if sample is None else statistics.median(sample() for _ in range(repeats))

    return {
        "threads": threads,
        "large_gflops": rate(2048, 2048, 2048, 10, onednn=False),
        "rows64_gflops": rate(64, 512, 8000, 50, onednn=False),
        "onednn_large_gflops": rate(2048, 2048, 2048, 10, onednn=True),
        "onednn_rows64_gflops": rate(64, 512, 8000, 50, onednn=True),
    }


def flops(model_cfg, vocab: int, n_src: int, n_tgt: int, src_tgt_pairs: int) -> float:
    """Matrix-product FLOPs of one training pass (2 per multiply-add, forward + 2x backward)
    over `n_src` source and `n_tgt` target tokens, `src_tgt_pairs` = sum over sentences of S*T
    (attention scores and contexts)."""
    E, H = model_cfg.emb_size, model_cfg.hidden_size
    D, K = 2 * H, 2 * H  # decoder size (encoder output) and key size
    encoder = 2 * 4 * H * (E + H)  # two directions, four gates
    keys = K * D  # general: W_a h_s once per source token
    decoder = 4 * D * (E + D + D) + D * (K + D) + vocab * D  # LSTM (input feeding), W_c, W_s
    attention = D + K  # scores and context per (source, target) pair
    macs = n_src * (encoder + keys) + n_tgt * decoder + src_tgt_pairs * attention
    return 2 * 3 * macs


def first_epoch_batches(src: list, tgt: list) -> list[list[int]]:
    """The protocol's first-epoch batches: 64 sentences, pools of 200, seed 1."""
    return epoch_batches(
        [len(s) for s in src],
        [len(t) for t in tgt],
        batch_size=64,
        batch_tokens=None,
        pool=200,
        seed=1,
        epoch=0,
    )


def first_epoch_setup() -> tuple[Tokenizer, list, list, list[list[int]]]:
    """What the paired comparisons (benchmarks/compare.py) start from: 2 threads, seed 1 (for
    the model they then build), the protocol's tokenizer and training pairs, and the first
    epoch's batches."""
    keep_freed_memory()
    torch.set_num_threads(2)
    torch.manual_seed(1)
    _, tokenizer, src, tgt = protocol_data(default_cache_dir())
    return tokenizer, src, tgt, first_epoch_batches(src, tgt)


def protocol_batches(args, src: list, tgt: list, epoch: int) -> list[list[int]]:
    """Epoch `epoch`'s batches as --batch, --batch-tokens and --pool say."""
    return epoch_batches(
        [len(s) for s in src],
        [len(t) for t in tgt],
        batch_size=args.batch,
        batch_tokens=args.batch_tokens,
        pool=args.pool,
        seed=args.seed,
        epoch=epoch,
    )


def train_benchmark(args, model, tokenizer, src, tgt) -> dict:
    trainer = defaults(
        TrainerConfig,
        batch_size=args.batch,
        batch_tokens=args.batch_tokens,
        bucket_pool=args.pool,
        precision=args.precision,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as optim=adam
    batches = protocol_batches(args, src, tgt, epoch=0)
    # one large product of each kind after every measured step: a peak read over the same
    # minutes as the steps, so that the machine's drift hits both
    samplers = {
        "torch_mm": product_sampler(2048, 2048, 2048, onednn=False),
        "onednn": product_sampler(2048, 2048, 2048, onednn=True),
    }
    if args.precision == "bfloat16":
        samplers["torch_mm_bfloat16"] = product_sampler(
            2048, 2048, 2048, onednn=False, dtype=torch.bfloat16
        )
    peaks: dict[str, list[float]] = {name: [] for name, f in samplers.items() if f is not None}
    records = []
    for step in range(args.warmup + args.steps):
        batch = make_batch(src, tgt, batches[step % len(batches)])
        start = time.perf_counter()
        train_step(model, optimizer, batch, trainer, clip_norm=5.0)
        elapsed = time.perf_counter() - start
        if step >= args.warmup:
            for name in peaks:
                peaks[name].append(samplers[name]())
            n_src, n_tgt = int(batch.src_mask.sum()), batch.n_tokens
            pairs = int((batch.src_mask.sum(-1) * batch.tgt_mask.sum(-1)).sum())
            records.append(
                {
                    "dt": elapsed,
                    "src": n_src,
                    "tgt": n_tgt,
                    "pairs": pairs,
                    "padded_tgt": batch.tgt_mask.numel(),
                }
            )
    tgt_rate = statistics.median(r["tgt"] / r["dt"] for r in records)
    total = {k: sum(r[k] for r in records) for k in ("dt", "src", "tgt", "pairs", "padded_tgt")}
    return {
        "steps": args.steps,
        "median_tgt_tok_s": tgt_rate,
        "median_srctgt_tok_s": statistics.median((r["src"] + r["tgt"]) / r["dt"] for r in records),
        "tgt_pad_fraction": 1 - total["tgt"] / total["padded_tgt"],
        "mean_src_tgt_pairs_per_tgt": total["pairs"] / total["tgt"],
        "src_per_tgt": total["src"] / total["tgt"],
        "train_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "interleaved_peak_gflops": {name: statistics.median(v) for name, v in peaks.items()},
    }


def time_to_quality(args, model_cfg, corpus, tokenizer, src, tgt) -> tuple[dict, object]:
    """Train a fresh protocol model for args.train_minutes of wall clock or args.train_steps
    updates, whichever ends first; dev loss after it, and after each of args.dev_loss_at
    updates (untimed), to compare runs at equal target tokens."""
    dev_src, dev_tgt = tokenizer.encode_src(corpus.dev.src), tokenizer.encode_tgt(corpus.dev.tgt)

    def dev_loss() -> float:
        return mean_loss(model, dev_src, dev_tgt, torch.device("cpu"))

    checks: dict[int, dict] = {}
    torch.manual_seed(args.seed)
    model = protocol_model(model_cfg, tokenizer)
    trainer = defaults(
        TrainerConfig,
        batch_size=args.batch,
        batch_tokens=args.batch_tokens,
        precision=args.precision,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=True)
    budget, spent, steps, tokens, epoch = args.train_minutes * 60 or math.inf, 0.0, 0, 0, 0
    max_steps = args.train_steps or math.inf

    def more() -> bool:
        return spent < budget and steps < max_steps

    while more():
        batches = protocol_batches(args, src, tgt, epoch)
        for index in batches:
            start = time.perf_counter()
            batch = make_batch(src, tgt, index)
            train_step(model, optimizer, batch, trainer, clip_norm=5.0)
            spent += time.perf_counter() - start
            steps, tokens = steps + 1, tokens + batch.n_tokens
            if steps in args.dev_loss_at:
                checks[steps] = {"tgt_tokens": tokens, "dev_loss": dev_loss()}
            if not more():
                break
        epoch += 1
    report = {
        "seed": args.seed,
        "minutes": args.train_minutes,
        "max_steps": args.train_steps,
        "precision": args.precision,
        "lr": args.lr,
        "batch": args.batch,
        "batch_tokens": args.batch_tokens,
        "steps": steps,
        "epochs": tokens / sum(len(t) - 1 for t in tgt),  # tgt ids hold BOS and EOS
        "tgt_tokens": tokens,
        "tgt_tok_s": tokens / spent,
        "dev_loss": dev_loss(),
        "dev_loss_at_steps": checks,
    }
    return report, model


def decode_config(beam: int, stop: str, precision: str, workers: int) -> DecodeConfig:
    """The protocol's decoding: batches of 64, at most 100 pieces, GNMT's penalty for beams."""
    return defaults(
        DecodeConfig,
        beam_size=beam,
        length_penalty="gnmt" if beam > 1 else "none",
        alpha=1.0,
        max_len_ratio=0.0,
        max_len_extra=100,
        batch_size=64,
        stop=stop,
        precision=precision,
        workers=workers,
    )


def decode_benchmark(
    model,
    tokenizer,
    lines: list[str],
    refs: list[str],
    beam: int,
    stop: str = "k_finished",
    precision: str = "float32",
    workers: int = 1,
) -> dict:
    """Sentences/s and BLEU of decoding `lines` (`decode_config`)."""
    cfg = decode_config(beam, stop, precision, workers)
    start = time.perf_counter()
    hyps, _ = translate_texts(model, tokenizer, lines, cfg, torch.device("cpu"))
    elapsed = time.perf_counter() - start
    return {
        "beam": beam,
        "stop": stop,
        "precision": precision,
        "workers": workers,
        "sentences": len(lines),
        "sent_per_s": len(lines) / elapsed,
        "bleu": bleu(hyps, [refs[: len(hyps)]])[0],
    }


def decode_key(name: str, precision: str, first: str) -> str:
    """The report's key of a decoding: `name` for the first --decode-precision, else suffixed."""
    return name if precision == first else f"{name}_{precision}"


PEER_SCRIPTS = {"ref": "run_ref.sh", "opennmt": "run_opennmt.sh", "joeynmt": "run_joeynmt.sh"}


def run_peers(folder: Path, minutes: int, systems: list[str]) -> dict:
    """The peers' own scripts, one after the other; their result.json files by system."""
    work, venvs = peer_dirs()
    env = os.environ | {"MINUTES": str(minutes), "BENCH_WORK": str(work)}
    subprocess.run(["bash", str(folder / "setup_venvs.sh")], env=env, check=True)
    work.mkdir(parents=True, exist_ok=True)
    python = str(venvs / "ref" / "bin" / "python")
    if not (work / "data" / "train-len50.sp.en").exists():
        subprocess.run([python, str(folder / "prepare_data.py")], env=env, check=True)
    results = {}
    for system in systems:
        print(f"running {system} for {minutes} min ...", file=sys.stderr, flush=True)
        with open(work / f"run_{system}.log", "w") as log:
            subprocess.run(
                ["bash", str(folder / PEER_SCRIPTS[system])],
                env=env,
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        results[system] = json.loads((work / "runs" / system / "result.json").read_text())
    return results


def side_by_side(report: dict, peers: dict) -> str:
    """Markdown table of nmt (a row per decoding precision) and the peers, with nmt's ratios to
    each peer."""
    t, q = report["train"], report.get("time_to_quality", {})
    precisions = report["decode_precisions"]
    nmt = {}
    for p in precisions:
        greedy, beam, beam_k = (
            report[decode_key(name, p, precisions[0])]
            for name in ("greedy", "beam5_best_finished", "beam5")
        )
        nmt[p] = {
            "greedy": greedy["sent_per_s"],
            "beam": beam["sent_per_s"],
            "beam_k": beam_k["sent_per_s"],
            "bleu": f"{greedy['bleu']:.1f} / {beam['bleu']:.1f} (k_finished {beam_k['bleu']:.1f})",
        }
    tok, minutes, rss = t["median_tgt_tok_s"], q.get("minutes", 0), t["train_peak_rss_mb"]
    rows = [
        "| system | train tgt tok/s | greedy sent/s | beam-5 sent/s (stop at the best's </s>) "
        "| BLEU greedy / beam 5 "
        "(training minutes) | train peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    workers = report.get("decode_workers", 1)
    processes = f", {workers} processes" if workers > 1 else ""
    for p, d in nmt.items():
        rows.append(
            f"| nmt (train {report['precision']}, decode {p}{processes}) | {tok:,.0f} "
            f"| {d['greedy']:.1f} "
            f"| {d['beam']:.1f} (k_finished {d['beam_k']:.1f}) | {d['bleu']} ({minutes:g}) "
            f"| {rss:,.0f} |"
        )

    def ratios(field: str, peer_value: float) -> str:
        return ", ".join(f"{p} {nmt[p][field] / peer_value:.2f}x" for p in precisions)

    for name, r in peers.items():
        peer_tok, greedy, beam = (
            r["train"]["median_tgt_tok_s"],
            r["beam1"]["sent_s"],
            r["beam5"]["sent_s"],
        )
        rows.append(
            f"| {name} | {peer_tok:,.0f} (nmt {tok / peer_tok:.2f}x) | {greedy:.1f} "
            f"(nmt {ratios('greedy', greedy)}) | {beam:.1f} (nmt {ratios('beam', beam)}) "
            f"| {r['beam1']['bleu']:.1f} / {r['beam5']['bleu']:.1f} "
            f"({r['train_wall_s'] / 60:.0f}) | {r['train_peak_rss_mb']:,.0f} |"
        )
    return "\n".join(rows)


def paired_decoding(args, model, precision: str, same_weights: bool = False) -> dict:
    """nmt's decoding model against OpenNMT-py's checkpoint of this run, alternated round by
    round in fresh processes (benchmarks/decode_vs_peer.py); with `same_weights`, nmt decodes
    OpenNMT-py's checkpoint too."""
    work, venvs = peer_dirs()
    options = dict(
        work=work,
        venvs=venvs,
        rounds=args.paired_rounds,
        workers=tuple(dict.fromkeys([1, args.decode_workers])),
        precision=precision,
        threads=args.threads,
    )
    if same_weights:
        return compare(None, **options)
    with tempfile.TemporaryDirectory() as tmp:  # the weights, where not saved already
        weights = args.save_model or args.load_model
        if weights is None:
            weights = Path(tmp) / "model.pt"
            torch.save(model.state_dict(), weights)
        return compare(weights, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument(
        "--pool",
        type=int,
        default=400,
        help="batches per length-sorted pool (400: the protocol's 395 batches in one pool)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decode-sentences", type=int, default=None, help="first N of Mark")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--train-minutes", type=float, default=0, help="time-to-quality budget")
    parser.add_argument(
        "--train-steps", type=int, default=None, help="stop the timed training after N updates"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="initialisation, dropout and batch order"
    )
    parser.add_argument(
        "--dev-loss-at",
        type=int,
        nargs="*",
        default=[],
        help="also measure the timed training's dev loss after these updates (untimed)",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam rate of the timed training")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="trainer.precision of both trainings (bfloat16: autocast)",
    )
    parser.add_argument(
        "--decode-precision",
        choices=PRECISIONS,
        nargs="+",
        default=["float32"],
        help="decode.precision of the decoding of Mark, each in turn (the first is the report's "
        "greedy/beam5 entries, the others are suffixed)",
    )
    parser.add_argument(
        "--decode-workers",
        type=int,
        default=1,
        help="decode.workers: one-thread processes decoding Mark side by side",
    )
    parser.add_argument("--save-model", type=Path, default=None, help="the timed model's weights")
    parser.add_argument("--load-model", type=Path, default=None, help="decode these weights")
    parser.add_argument("--peers", type=Path, default=None, help="folder of the peers' scripts")
    parser.add_argument("--peer-systems", default="ref,opennmt,joeynmt", help="comma-separated")
    parser.add_argument("--minutes", type=int, default=20, help="peers' training budget")
    parser.add_argument(
        "--paired-rounds",
        type=int,
        default=0,
        help="after the peers: decode Mark with nmt's and OpenNMT-py's models in fresh processes, "
        "alternated for N rounds, then both with OpenNMT-py's (benchmarks/decode_vs_peer.py)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="the plain torch reference model, without the fast CPU layer (nmt.fast)",
    )
    args = parser.parse_args()
    systems = [name for name in args.peer_systems.split(",") if name]  # checked before training
    unknown = sorted(set(systems) - set(PEER_SCRIPTS))
    if args.peers and unknown:
        parser.error(f"--peer-systems: unknown {', '.join(unknown)}; known: ref,opennmt,joeynmt")
    if args.peers and args.paired_rounds and "opennmt" not in systems:
        parser.error("--paired-rounds: decodes against OpenNMT-py; add opennmt to --peer-systems")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    corpus, tokenizer, src, tgt = protocol_data(default_cache_dir())
    model_cfg = protocol_model_config()
    model = protocol_model(model_cfg, tokenizer, fast=not args.reference)
    report = {
        "params": count_parameters(model),
        "train_pairs": len(src),
        "matmul": matmul_peak(args.threads),
    }
    report["train"] = train_benchmark(args, model, tokenizer, src, tgt)
    t = report["train"]
    per_tgt = (
        flops(
            model_cfg,
            tokenizer.tgt_vocab_size,
            round(t["src_per_tgt"] * 1e6),
            10**6,
            round(t["mean_src_tgt_pairs_per_tgt"] * 1e6),
        )
        / 1e6
    )
    report["flops_per_tgt_token"] = per_tgt
    report["train_gflops"] = per_tgt * t["median_tgt_tok_s"] / 1e9
    interleaved = t["interleaved_peak_gflops"]
    report["precision"] = args.precision
    if args.precision == "bfloat16":
        # the fraction is of the peak of the precision the products ran in
        report["fraction_of_matmul_peak"] = (
            report["train_gflops"] / interleaved["torch_mm_bfloat16"]
        )
        report["fraction_of_float32_matmul_peak"] = report["train_gflops"] / interleaved["torch_mm"]
    else:
        report["fraction_of_matmul_peak"] = report["train_gflops"] / interleaved["torch_mm"]
        if "onednn" in interleaved:
            report["fraction_of_onednn_peak"] = report["train_gflops"] / interleaved["onednn"]
    report["decoded_model"] = "untrained"
    if args.train_minutes or args.train_steps:
        report["time_to_quality"], model = time_to_quality(
            args, model_cfg, corpus, tokenizer, src, tgt
        )
        report["decoded_model"] = "time_to_quality"
        if args.save_model:
            torch.save(model.state_dict(), args.save_model)
    elif args.load_model:
        model.load_state_dict(torch.load(args.load_model, weights_only=True))
        report["decoded_model"] = str(args.load_model)
    lines = corpus.test.src[: args.decode_sentences]
    report["decode_precisions"] = precisions = list(dict.fromkeys(args.decode_precision))
    report["decode_workers"] = args.decode_workers
    for p in precisions:
        for name, beam, stop in [
            ("greedy", 1, "k_finished"),
            ("beam5", 5, "k_finished"),
            ("beam5_best_finished", 5, "best_finished"),
        ]:
            report[decode_key(name, p, precisions[0])] = decode_benchmark(
                model,
                tokenizer,
                lines,
                corpus.test.tgt,
                beam,
                stop=stop,
                precision=p,
                workers=args.decode_workers,
            )
    text = json.dumps(report, indent=2)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n")
    if args.peers:
        report["peers"] = run_peers(args.peers, args.minutes, systems)
        table = side_by_side(report, report["peers"])
        if args.paired_rounds:
            report["paired_decoding"] = paired_decoding(args, model, precisions[0])
            table += "\n\nPaired decoding, fresh processes:\n" + summary(report["paired_decoding"])
            same = paired_decoding(args, model, precisions[0], same_weights=True)
            report["paired_decoding_same_weights"] = same
            table += "\n\nBoth decoding OpenNMT-py's checkpoint:\n" + summary(same)
        print(table)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    sys.exit(main())
