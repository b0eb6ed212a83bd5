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

    python scripts/benchmark.py ... --save-model model.pt --peers ../shared/bench-peers \\
        --peer-systems opennmt
    python scripts/decode_vs_peer.py model.pt --rounds 4 --workers 1 2
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

PEER_STOP = "best_finished"  # OpenNMT-py's beam stops once the step's best extension ends


def peer_dirs() -> tuple[Path, Path]:
    """The peers' work folder (data, runs) and venvs, as bench-peers/common.sh finds them."""
    tmp = Path(tempfile.gettempdir())
    work = Path(os.environ.get("BENCH_WORK", tmp / "bench-work"))
    return work, Path(os.environ.get("BENCH_VENVS", tmp / "bench-venvs"))


def nmt_once(args) -> None:
    """In this fresh process: decode Mark once and print the benchmark's decoding record."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from benchmark import decode_benchmark, protocol_data, protocol_model, protocol_model_config

    from nmt.allocator import keep_freed_memory
    from nmt.config import default_cache_dir

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    corpus, tokenizer, _, _ = protocol_data(default_cache_dir())
    model = protocol_model(protocol_model_config(), tokenizer).eval()
    model.load_state_dict(torch.load(args.model, weights_only=True))
    stop = PEER_STOP if args.beam[0] > 1 else "k_finished"
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


def run_nmt(model: Path, beam: int, workers: int, precision: str, threads: int, cpus: str) -> float:
    """nmt's decoding of Mark in a fresh process (this script with --once); its sentences/s."""
    prefix, env = pinned(cpus, threads)
    command = [sys.executable, __file__, str(model), "--once", "--beam", str(beam)]
    command += ["--workers", str(workers), "--precision", precision, "--threads", str(threads)]
    out = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nmt decoding failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["sent_per_s"]


def run_opennmt(venvs: Path, work: Path, beam: int, threads: int, cpus: str) -> float:
    """OpenNMT-py's decoding of Mark as bench-peers/run_opennmt.sh runs it, with the checkpoint
    that script picked; its own sentences/s."""
    run = work / "runs" / "opennmt"
    checkpoint = run / json.loads((run / "ckpt_info.json").read_text())["path"]
    test = work / "data" / "test.sp.en"
    sentences = sum(1 for _ in open(test, encoding="utf-8"))
    prefix, env = pinned(cpus, threads)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # its own checkpoint holds a Namespace
    env["PYTHONWARNINGS"] = "ignore::FutureWarning,ignore::UserWarning"
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(venvs / "onmt" / "bin" / "onmt_translate"), "-model", str(checkpoint)]
        command += ["-src", str(test), "-output", f"{tmp}/hyp", "-beam_size", str(beam)]
        command += ["-batch_size", "64", "-batch_type", "sents", "-max_length", "100"]
        command += ["-length_penalty", "wu", "-alpha", "1.0", "-report_time", "-gpu", "-1"]
        out = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
    found = re.search(r"Total translation time \(s\): ([\d.]+)", out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        sys.exit(f"onmt_translate failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return sentences / float(found.group(1))


def compare(
    model: Path,
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
    Prints each round as it ends."""
    info = work / "runs" / "opennmt" / "ckpt_info.json"
    if not info.exists():
        sys.exit(f"{info}: no OpenNMT-py run there (benchmark.py --peers first)")
    report: dict = {"rounds": rounds, "precision": precision, "threads": threads}
    for beam in beams:
        rates: dict[str, list[float]] = {"opennmt": []} | {f"nmt x{w}": [] for w in workers}
        for round_ in range(rounds):
            for name in list(rates) if round_ % 2 == 0 else list(rates)[::-1]:
                if name == "opennmt":
                    rate = run_opennmt(venvs, work, beam, threads, cpus)
                else:
                    rate = run_nmt(model, beam, int(name[5:]), precision, threads, cpus)
                rates[name].append(rate)
            line = ", ".join(f"{name} {r[-1]:.1f}" for name, r in rates.items())
            print(f"beam {beam}, round {round_ + 1}: sent/s {line}", file=sys.stderr, flush=True)
        ratios = {
            w: [a / b for a, b in zip(rates[f"nmt x{w}"], rates["opennmt"], strict=True)]
            for w in workers
        }
        report[f"beam{beam}"] = {
            "sent_per_s": rates,
            "median_ratio": {f"nmt x{w}": statistics.median(r) for w, r in ratios.items()},
        }
    return report


def summary(report: dict) -> str:
    """One line per beam size and number of nmt processes."""
    lines = []
    for key, r in report.items():
        if not key.startswith("beam"):
            continue
        peer = statistics.median(r["sent_per_s"]["opennmt"])
        for name, ratio in r["median_ratio"].items():
            mine = statistics.median(r["sent_per_s"][name])
            lines.append(
                f"{key}, nmt with {name[5:]} process(es) / OpenNMT-py: median ratio {ratio:.3f} "
                f"over {report['rounds']} rounds (median sent/s {mine:.1f} vs {peer:.1f})"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="weights saved by benchmark.py --save-model")
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
