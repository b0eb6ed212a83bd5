"""`nmt-translate checkpoint=PATH [input=FILE|-] [decode=beam decode.beam_size=K]
[decode.n_best=N] [save_attention=DIR]`: raw text in, one sentence a line; only the translations
go to stdout (with n_best > 1: `line<TAB>score<TAB>translation`, N lines per input), logs to
stderr, and no run directory is made."""

from __future__ import annotations

import logging
import sys
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
from nmt.tokenizer import load_tokenizer
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
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), tokenizer, saved


def translate_lines(
    model: Seq2Seq, tokenizer, lines: list[str], decode_cfg: DecodeConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """Translate raw sentences (`translate_ids` of their source ids); n-best lists in input
    order."""
    return translate_ids(model, tokenizer.encode_src(lines), decode_cfg, device)


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


def save_attention(directory: Path, tokenizer, lines: list[str], hyps: list[Hypothesis]) -> None:
    """{i}.json (tokens and weights) and {i}.png (heatmap) for every translated line."""
    from nmt.plots import attention_heatmap

    directory.mkdir(parents=True, exist_ok=True)
    for i, (line, hyp) in enumerate(zip(lines, hyps, strict=True)):
        src = tokenizer.src_tokens(line)
        tgt = tokenizer.tgt_tokens(hyp.ids) + ["</s>"]
        weights = hyp.attention[:, : len(src)]
        record = {"source": src, "target": tgt, "weights": weights.tolist()}
        (directory / f"{i:04d}.json").write_text(jsonfile.dumps(record), encoding="utf-8")
        attention_heatmap(weights, src, tgt, directory / f"{i:04d}.png")


def read_input(name: str) -> list[str]:
    if name == "-":
        return [normalize(line) for line in sys.stdin]
    try:
        with open(name, encoding="utf-8") as f:
            return [normalize(line) for line in f]
    except FileNotFoundError:
        raise NmtError(f"input {name}: no such file") from None


@hydra.main(config_path=CONFIG_DIR, config_name="translate", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "checkpoint"):
        raise NmtError("checkpoint=PATH is required")
    decode_cfg = typed(DecodeConfig, cfg.decode, "decode")
    device = resolve_device(cfg.device)
    model, tokenizer, _ = load_model(cfg.checkpoint, device)
    lines = read_input(str(cfg.input))
    nbests = translate_lines(model, tokenizer, lines, decode_cfg, device) if lines else []
    render = Renderer(tokenizer, decode_cfg)
    for i, (line, nbest) in enumerate(zip(lines, nbests, strict=True)):
        for hyp in nbest:
            text = render(hyp, line)
            print(text if decode_cfg.n_best == 1 else f"{i}\t{hyp.score:.4f}\t{text}")
    if cfg.save_attention:
        save_attention(Path(cfg.save_attention), tokenizer, lines, [n[0] for n in nbests])


if __name__ == "__main__":
    main()
