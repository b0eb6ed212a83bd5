"""`nmt-translate checkpoint=PATH [input=FILE|-]`: raw text in, one sentence a line; only the
translations go to stdout, logs to stderr, and no run directory is made."""

from __future__ import annotations

import logging
import sys

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from nmt.batching import make_batch, sorted_batches
from nmt.checkpoint import load_checkpoint
from nmt.config import CONFIG_DIR, DecodeConfig, cli, typed
from nmt.data import normalize
from nmt.errors import NmtError
from nmt.model import Seq2Seq, build_model, resolve_device
from nmt.search import Hypothesis, greedy
from nmt.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def load_model(path: str, device: torch.device) -> tuple[Seq2Seq, Tokenizer, dict]:
    """Rebuild the model and tokenizer from a checkpoint alone."""
    saved = load_checkpoint(path)
    tokenizer = Tokenizer(saved["tokenizer"]["src"], saved["tokenizer"]["tgt"])
    model = build_model(
        OmegaConf.create(saved["config"]["model"]),
        src_vocab_size=tokenizer.src_vocab_size,
        tgt_vocab_size=tokenizer.tgt_vocab_size,
    )
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), tokenizer, saved


def translate_lines(
    model: Seq2Seq,
    tokenizer: Tokenizer,
    lines: list[str],
    decode: DecodeConfig,
    device: torch.device,
) -> list[Hypothesis]:
    """Translate raw sentences in length-sorted batches; results come back in input order."""
    model.eval()
    src_ids = tokenizer.encode_src(lines)
    hyps: list[Hypothesis | None] = [None] * len(lines)
    for index in sorted_batches([len(s) for s in src_ids], decode.batch_size):
        batch = make_batch(src_ids, None, index).to(device)
        out = greedy(
            model,
            batch.src,
            batch.src_mask,
            max_len_ratio=decode.max_len_ratio,
            max_len_extra=decode.max_len_extra,
        )
        for i, hyp in zip(index, out, strict=True):
            hyps[i] = hyp
    return hyps


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
    decode = typed(DecodeConfig, cfg.decode, "decode")
    if decode.beam_size != 1:
        raise NmtError("decode.beam_size: only greedy search (1) is available")
    device = resolve_device(cfg.device)
    model, tokenizer, _ = load_model(cfg.checkpoint, device)
    lines = read_input(str(cfg.input))
    hyps = translate_lines(model, tokenizer, lines, decode, device) if lines else []
    for hyp in hyps:
        print(tokenizer.decode_tgt(hyp.ids))


if __name__ == "__main__":
    main()
