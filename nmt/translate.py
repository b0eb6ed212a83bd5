"""`nmt-translate checkpoint=PATH [input=FILE|-] [decode=beam decode.beam_size=K]
[decode.n_best=N] [save_attention=DIR]`: raw text in, one sentence a line; only the translations
go to stdout (with n_best > 1: `line<TAB>score<TAB>translation`, N lines per input), logs to
stderr, and no run directory is made."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from nmt import jsonfile
from nmt.batching import make_batch, sorted_batches
from nmt.checkpoint import load_checkpoint
from nmt.config import CONFIG_DIR, DecodeConfig, cli, typed
from nmt.data import normalize
from nmt.errors import NmtError
from nmt.model import Seq2Seq, build_model, resolve_device
from nmt.parallel import map_items
from nmt.precision import check_precision
from nmt.search import Hypothesis, decode
from nmt.tokenizer import EOS, load_tokenizer
from nmt.unk import load_dictionary, replace_unks

log = logging.getLogger(__name__)


def load_model(path: str, device: torch.device) -> tuple[Seq2Seq, object, dict]:
    """Rebuild the model and tokenizer from a checkpoint alone."""
    saved = load_checkpoint(path)
    tokenizer = load_tokenizer(saved["tokenizer"])
    model = build_model(
        OmegaConf.create(saved["config"]["model"]),
        src_vocab_size=tokenizer.src_vocab_size,
        tgt_vocab_size=tokenizer.tgt_vocab_size,
    )
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or str(err).splitlines()[:1]
        raise NmtError(
            f"checkpoint {path}: its weights do not fit the model its config describes "
            f"({first[0].strip() if first else 'state_dict mismatch'})"
        ) from None
    return model.to(device).eval(), tokenizer, saved


def translate_lines(
    model: Seq2Seq, tokenizer, lines: list[str], decode_cfg: DecodeConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """Translate raw sentences (`translate_ids` of their source ids); n-best lists in input
    order."""
    return translate_ids(model, tokenizer.encode_src(lines), decode_cfg, device)


def cut_long_sources(src_ids: list[list[int]], limit: int) -> list[list[int]]:
    """Sources of more than `limit` ids cut to their first limit - 1 and </s>, each cut logged:
    search memory grows with the source, and one huge line must not stop the others."""
    cut = []
    for i, ids in enumerate(src_ids):
        if len(ids) > limit:
            log.warning(
                "sentence %d: %d source pieces cut to decode.max_src_len=%d", i + 1, len(ids), limit
            )
            ids = ids[: limit - 1] + [EOS]
        cut.append(ids)
    return cut


def translate_ids(
    model: Seq2Seq, src_ids: list[list[int]], decode_cfg: DecodeConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """Translate source id sequences in length-sorted batches, longest first, over
    `decode_cfg.workers` processes (nmt.parallel); n-best lists come back in input order."""
    check_precision(decode_cfg.precision, device, "decode.precision")
    if decode_cfg.workers > 1 and device.type != "cpu":
        raise NmtError(
            f"decode.workers: {decode_cfg.workers} processes are for decoding on CPU; "
            f"on {device.type} use decode.workers=1"
        )
    threads = torch.get_num_threads()
    if 1 < decode_cfg.workers < threads:
        log.warning(
            "decode.workers=%d runs %d one-thread processes; torch has %d threads, which "
            "decode.workers=%d would use",
            decode_cfg.workers,
            decode_cfg.workers,
            threads,
            threads,
        )
    model.eval()
    src_ids = cut_long_sources(src_ids, decode_cfg.max_src_len)
    batches = sorted_batches([len(s) for s in src_ids], decode_cfg.batch_size)

    def translate_batch(k: int) -> list[list[tuple]]:  # picklable n-best lists of batch k
        batch = make_batch(src_ids, None, batches[k]).to(device)
        nbests = decode(model, batch.src, batch.src_mask, decode_cfg)
        return [[(h.ids, h.attention.numpy(), h.score) for h in nbest] for nbest in nbests]

    hyps: list[list[Hypothesis]] = [[] for _ in src_ids]
    for index, nbests in zip(
        batches, map_items(translate_batch, len(batches), decode_cfg.workers), strict=True
    ):
        for i, nbest in zip(index, nbests, strict=True):
            hyps[i] = [Hypothesis(ids, torch.from_numpy(a), score) for ids, a, score in nbest]
    return hyps


class Renderer:
    """Hypotheses to text: detokenised, with unknown words replaced if decode.unk_replace."""

    def __init__(self, tokenizer, decode_cfg: DecodeConfig) -> None:
        self.tokenizer, self.unk_replace = tokenizer, decode_cfg.unk_replace
        self.dictionary = load_dictionary(decode_cfg.unk_dict) if decode_cfg.unk_dict else {}

    def __call__(self, hyp: Hypothesis, source: str) -> str:
        tokens = self.tokenizer.tgt_tokens(hyp.ids)
        if self.unk_replace:
            src_tokens = self.tokenizer.src_tokens(source)
            tokens = replace_unks(tokens, hyp.attention, src_tokens, self.dictionary)
        return self.tokenizer.detokenize(tokens)


def translate_texts(
    model: Seq2Seq, tokenizer, lines: list[str], decode_cfg: DecodeConfig, device: torch.device
) -> tuple[list[str], list[Hypothesis]]:
    """The best translation of each line as text, and its hypothesis."""
    render = Renderer(tokenizer, decode_cfg)
    best = [nbest[0] for nbest in translate_lines(model, tokenizer, lines, decode_cfg, device)]
    return [render(h, line) for h, line in zip(best, lines, strict=True)], best


def save_attention(
    directory: Path,
    tokenizer,
    lines: list[str],
    hyps: list[Hypothesis],
    numbers: list[int] | None = None,
) -> None:
    """{i}.json (tokens and weights) and {i}.png (heatmap) for every translated line; i is the
    line's number in `numbers` (its input line), else its position."""
    from nmt.plots import attention_heatmap

    directory.mkdir(parents=True, exist_ok=True)
    numbers = list(range(len(lines))) if numbers is None else numbers
    for i, line, hyp in zip(numbers, lines, hyps, strict=True):
        src = tokenizer.src_tokens(line)
        if len(src) > hyp.attention.size(1):  # a source cut to decode.max_src_len
            src = src[: hyp.attention.size(1) - 1] + ["</s>"]
        tgt = tokenizer.tgt_tokens(hyp.ids) + ["</s>"]
        weights = hyp.attention[:, : len(src)]
        record = {"source": src, "target": tgt, "weights": weights.tolist()}
        (directory / f"{i:04d}.json").write_text(jsonfile.dumps(record), encoding="utf-8")
        attention_heatmap(weights, src, tgt, directory / f"{i:04d}.png")


def decode_lines(data: bytes, name: str) -> list[str]:
    """UTF-8 lines, whitespace-normalised; a bad byte is an error naming its line."""
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            lines.append(normalize(raw.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise NmtError(
                f"input {name}:{number}: not valid UTF-8 (byte {raw[err.start]:#04x} at column "
                f"{err.start + 1})"
            ) from None
    return lines


def read_input(name: str) -> list[str]:
    """The lines of file `name`, or of standard input for '-'."""
    if name == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise NmtError("input -: standard input is closed")
        try:
            return decode_lines(sys.stdin.buffer.read(), "-")
        except OSError as err:
            raise NmtError(f"input -: cannot read standard input ({err.strerror})") from None
    try:
        data = Path(name).read_bytes()
    except FileNotFoundError:
        raise NmtError(f"input {name}: no such file") from None
    except IsADirectoryError:
        raise NmtError(f"input {name}: is a directory, not a file") from None
    except OSError as err:
        raise NmtError(f"input {name}: {err.strerror}") from None
    return decode_lines(data, name)


def write_quietly_to_a_closed_pipe(write: Callable[[], None]) -> None:
    """Run `write`; if stdout's reader has gone (`| head -1`), end quietly as Unix tools do."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail
        sys.exit(0)


@hydra.main(config_path=CONFIG_DIR, config_name="translate", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "checkpoint"):
        raise NmtError("checkpoint=PATH is required")
    decode_cfg = typed(DecodeConfig, cfg.decode, "decode")
    device = resolve_device(cfg.device)
    model, tokenizer, _ = load_model(cfg.checkpoint, device)
    lines = read_input(str(cfg.input))
    # an empty line translates to an empty line, not to what the model invents for nothing
    given = [i for i, line in enumerate(lines) if line]
    kept = [lines[i] for i in given]
    found = translate_lines(model, tokenizer, kept, decode_cfg, device) if kept else []
    nbests: dict[int, list[Hypothesis]] = dict(zip(given, found, strict=True))
    render = Renderer(tokenizer, decode_cfg)

    def write() -> None:
        for i, line in enumerate(lines):
            if i not in nbests:
                print("" if decode_cfg.n_best == 1 else f"{i}\t\t")
            for hyp in nbests.get(i, []):
                text = render(hyp, line)
                print(text if decode_cfg.n_best == 1 else f"{i}\t{hyp.score:.4f}\t{text}")

    write_quietly_to_a_closed_pipe(write)
    if cfg.save_attention:
        best = [n[0] for n in found]
        save_attention(Path(cfg.save_attention), tokenizer, kept, best, numbers=given)


if __name__ == "__main__":
    main()
