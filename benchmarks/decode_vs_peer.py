#!/usr/bin/env python3
"""Decoding speed of nmt against OpenNMT-py, alternated round by round on the models of one
benchmark run, so the machine's drift hits both alike.

`benchmark.py --peers` times one decoding of each kind per system, twenty minutes apart (nmt
decodes, then OpenNMT-py trains, then decodes); on this shared machine single decodings vary by
15-25%. Here each round decodes Mark with nmt's saved model and with OpenNMT-py's checkpoint of
the same run, each in a fresh process pinned to the peers' CPUs and timed by its own clock
around the translation alone (OpenNMT-py's "Total translation time", nmt's `translate_texts`),
so both pay their own first-decoding costs. It prints every round and the median of the
per-round ratios.

Each system's own model decodes its own way: one model repeats itself up to the 100-piece limit
where the other stops, and that changes the work as much as the code does. With --same-weights
nmt decodes OpenNMT-py's checkpoint instead (benchmarks/onmt_weights.py), so both search the same
model, and the script counts the hypotheses that come out the same piece for piece.

    python benchmarks/speed.py ... --save-model model.pt --peers PEERS \\
        --peer-systems opennmt
    python benchmarks/decode_vs_peer.py model.pt --rounds 4 --workers 1 2
    python benchmarks/decode_vs_peer.py --same-weights --rounds 4 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from onmt_weights import export

PEER_STOP = "best_finished"  # OpenNMT-py's beam stops once the step's best extension ends


def peer_dirs() -> tuple[Path, Path]:
    """The peers' work folder (data, runs) and venvs, as bench-peers/common.sh finds them."""
    tmp = Path(tempfile.gettempdir())
    work = Path(os.environ.get("BENCH_WORK", tmp / "bench-work"))
    return work, Path(os.environ.get("BENCH_VENVS", tmp / "bench-venvs"))


def nmt_once(args) -> None:
    """In this fresh process: decode Mark once and print the benchmark's decoding record (with
    --peer-weights, OpenNMT-py's model: its sentences/s and hypotheses as pieces)."""
    import time

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from onmt_weights import convert, source_ids
    from speed import (
        decode_benchmark,
        decode_config,
        protocol_data,
        protocol_model,
        protocol_model_config,
    )

    from nmt.config import default_cache_dir
    from nmt.decoding.translate import translate_ids
    from nmt.fast.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    corpus, tokenizer, _, _ = protocol_data(default_cache_dir())
    model = protocol_model(protocol_model_config(), tokenizer).eval()
    stop = PEER_STOP if args.beam[0] > 1 else "k_finished"
    if args.peer_weights:
        model.load_state_dict(convert(torch.load(args.model, weights_only=True), tokenizer))
        cfg = decode_config(args.beam[0], stop, args.precision, args.workers[0])
        start = time.perf_counter()
        ids = source_ids(tokenizer, corpus.test.src)
        hyps = translate_ids(model, ids, cfg, torch.device("cpu"))
        rate = len(ids) / (time.perf_counter() - start)
        pieces = [" ".join(tokenizer.tgt_tokens(nbest[0].ids)) for nbest in hyps]
        print(json.dumps({"sent_per_s": rate, "pieces": pieces}))
        return
    model.load_state_dict(torch.load(args.model, weights_only=True))
    record = decode_benchmark(
        model,
        tokenizer,
        corpus.test.src,
        corpus.test.tgt,
        args.beam[0],
        stop=stop,
        precision=args.precision,
        workers=args.workers[0],
    )
    print(json.dumps(record))


def pinned(cpus: str, threads: int) -> tuple[list[str], dict]:
    """The peers' process settings (bench-peers/common.sh): taskset and OMP/MKL threads."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return ["taskset", "-c", cpus], env


def run_nmt(
    model: Path, beam: int, workers: int, precision: str, threads: int, cpus: str, peer: bool
) -> dict:
    """nmt's decoding of Mark in a fresh process (this script with --once): its record, with
    sent_per_s. `peer`: `model` is OpenNMT-py's, exported by benchmarks/onmt_weights.py."""
    prefix, env = pinned(cpus, threads)
    command = [sys.executable, __file__, *(["--peer-weights"] if peer else []), str(model)]
    command += ["--once", "--beam", str(beam), "--workers", str(workers)]
    command += ["--precision", precision, "--threads", str(threads)]
    out = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nmt decoding failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def opennmt_checkpoint(work: Path) -> Path:
    """The checkpoint bench-peers/run_opennmt.sh picked for decoding."""
    run = work / "runs" / "opennmt"
    info = run / "ckpt_info.json"
    if not info.exists():
        sys.exit(f"{info}: no OpenNMT-py run there (benchmark.py --peers first)")
    return run / json.loads(info.read_text())["path"]


def run_opennmt(venvs: Path, work: Path, beam: int, threads: int, cpus: str) -> dict:
    """OpenNMT-py's decoding of Mark as bench-peers/run_opennmt.sh runs it, with the checkpoint
    that script picked: its own sentences/s and its hypotheses as pieces."""
    test = work / "data" / "test.sp.en"
    sentences = sum(1 for _ in open(test, encoding="utf-8"))
    prefix, env = pinned(cpus, threads)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # its own checkpoint holds a Namespace
    env["PYTHONWARNINGS"] = "ignore::FutureWarning,ignore::UserWarning"
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(venvs / "onmt" / "bin" / "onmt_translate")]
        command += ["-model", str(opennmt_checkpoint(work)), "-src", str(test)]
        command += ["-output", f"{tmp}/hyp", "-beam_size", str(beam)]
        command += ["-batch_size", "64", "-batch_type", "sents", "-max_length", "100"]
        command += ["-length_penalty", "wu", "-alpha", "1.0", "-report_time", "-gpu", "-1"]
        out = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
        found = re.search(r"Total translation time \(s\): ([\d.]+)", out.stdout + out.stderr)
        if out.returncode != 0 or not found:
            sys.exit(f"onmt_translate failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
        pieces = Path(f"{tmp}/hyp").read_text(encoding="utf-8").splitlines()
    return {"sent_per_s": sentences / float(found.group(1)), "pieces": pieces}


def compare(
    model: Path | None,
    *,
    work: Path,
    venvs: Path,
    rounds: int = 4,
    beams: tuple[int, ...] = (1, 5),
    workers: tuple[int, ...] = (1, 2),
    precision: str = "float32",
    threads: int = 2,
    cpus: str = "0,1",
) -> dict:
    """Per beam size: every round's sentences/s of OpenNMT-py and of nmt with each number of
    processes, the order reversed every other round; and the median of nmt's per-round ratios.
    With `model` None, nmt decodes OpenNMT-py's checkpoint, and the report counts the
    hypotheses both systems find alike. Prints each round as it ends."""
    checkpoint, peer = opennmt_checkpoint(work), model is None
    report: dict = {"rounds": rounds, "precision": precision, "threads": threads}
    report["nmt_model"] = f"OpenNMT-py's {checkpoint.name}" if peer else str(model)
    with tempfile.TemporaryDirectory() as tmp:
        if peer:
            model = Path(tmp) / "opennmt_weights.pt"
            export(venvs / "onmt" / "bin" / "python", checkpoint, model)
        for beam in beams:
            report[f"beam{beam}"] = compare_beam(
                model, peer, work, venvs, rounds, beam, workers, precision, threads, cpus
            )
    return report


def compare_beam(
    model: Path,
    peer: bool,
    work: Path,
    venvs: Path,
    rounds: int,
    beam: int,
    workers: tuple[int, ...],
    precision: str,
    threads: int,
    cpus: str,
) -> dict:
    """`compare` for one beam size."""
    rates: dict[str, list[float]] = {"opennmt": []} | {f"nmt x{w}": [] for w in workers}
    pieces: dict[str, list[str]] = {}
    for round_ in range(rounds):
        for name in list(rates) if round_ % 2 == 0 else list(rates)[::-1]:
            if name == "opennmt":
                record = run_opennmt(venvs, work, beam, threads, cpus)
            else:
                record = run_nmt(model, beam, int(name[5:]), precision, threads, cpus, peer)
            rates[name].append(record["sent_per_s"])
            pieces[name] = record.get("pieces", [])
        line = ", ".join(f"{name} {r[-1]:.1f}" for name, r in rates.items())
        print(f"beam {beam}, round {round_ + 1}: sent/s {line}", file=sys.stderr, flush=True)
    ratios = {
        w: [a / b for a, b in zip(rates[f"nmt x{w}"], rates["opennmt"], strict=True)]
        for w in workers
    }
    result = {
        "sent_per_s": rates,
        "median_ratio": {f"nmt x{w}": statistics.median(r) for w, r in ratios.items()},
    }
    if peer:  # the same model: how many of nmt's hypotheses are OpenNMT-py's, piece for piece
        theirs = pieces["opennmt"]
        result["same_hypotheses"] = {
            name: sum(a == b for a, b in zip(mine, theirs, strict=True))
            for name, mine in pieces.items()
            if name != "opennmt"
        }
        result["sentences"] = len(theirs)
    return result


def summary(report: dict) -> str:
    """One line per beam size and number of nmt processes."""
    lines = []
    for key, r in report.items():
        if not key.startswith("beam"):
            continue
        peer = statistics.median(r["sent_per_s"]["opennmt"])
        for name, ratio in r["median_ratio"].items():
            mine = statistics.median(r["sent_per_s"][name])
            line = (
                f"{key}, nmt with {name[5:]} process(es) / OpenNMT-py: median ratio {ratio:.3f} "
                f"over {report['rounds']} rounds (median sent/s {mine:.1f} vs {peer:.1f})"
            )
            if "same_hypotheses" in r:
                same = r["same_hypotheses"][name]
                line += f"; {same} of {r['sentences']} hypotheses the same as OpenNMT-py's"
            lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model", type=Path, nargs="?", help="weights saved by benchmark.py --save-model"
    )
    parser.add_argument(
        "--same-weights",
        action="store_true",
        help="nmt decodes OpenNMT-py's checkpoint (benchmarks/onmt_weights.py) instead of `model`",
    )
    parser.add_argument("--peer-weights", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--beam", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="decode.workers")
    parser.add_argument("--precision", default="float32", help="nmt's decode.precision")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpus", default="0,1", help="taskset CPU list, as the peers'")
    parser.add_argument("--out", type=Path, default=None, help="the rounds as JSON")
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    work, venvs = peer_dirs()
    parser.add_argument("--work", type=Path, default=work, help="BENCH_WORK")
    parser.add_argument("--venvs", type=Path, default=venvs, help="BENCH_VENVS")
    args = parser.parse_args()
    if args.once:
        return nmt_once(args)
    if (args.model is None) != args.same_weights:
        parser.error("give either a model or --same-weights")
    report = compare(
        args.model,
        work=args.work,
        venvs=args.venvs,
        rounds=args.rounds,
        beams=tuple(args.beam),
        workers=tuple(args.workers),
        precision=args.precision,
        threads=args.threads,
        cpus=args.cpus,
    )
    print(summary(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
