"""Translating with a trained model: loading it from a checkpoint, searching in length-sorted
batches (over worker processes on CPU), rendering hypotheses as text."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import torch
from omegaconf import OmegaConf
from torch import Tensor

from nmt.checkpoint import checked_config, load_checkpoint, load_weights
from nmt.config import DecodeConfig
from nmt.data.batching import make_batch, sorted_batches
from nmt.data.specials import EOS
from nmt.data.tokenizer import load_tokenizer
from nmt.decoding.heads import has_heads, head_weights
from nmt.decoding.parallel import map_items
from nmt.decoding.search import Hypothesis, decode
from nmt.decoding.unk import load_dictionary, replace_unks
from nmt.devices import check_precision
from nmt.errors import NmtError
from nmt.fast import accelerate
from nmt.models.build import build_model
from nmt.models.seq2seq import Seq2Seq

log = logging.getLogger(__name__)


def load_model(
    path: str, device: torch.device, fast: bool = True, allow_targets: Sequence[str] = ()
) -> tuple[Seq2Seq, object, dict]:
    """Rebuild the model and tokenizer from a checkpoint alone; `fast` puts the fast CPU layer
    on the model (nmt.fast.accelerate) when it is on the CPU. The checkpoint's config builds only
    nmt's own classes and those under `allow_targets` (nmt.trust), checked before anything."""
    saved = load_checkpoint(path)
    config = checked_config(saved, path, allow_targets)
    tokenizer = load_tokenizer(saved["tokenizer"])
    model = build_model(
        OmegaConf.create(config["model"]),
        src_vocab_size=tokenizer.src_vocab_size,
        tgt_vocab_size=tokenizer.tgt_vocab_size,
        joint_vocab=tokenizer.joint,
    )
    load_weights(model, saved["model"], f"checkpoint {path}")
    model = model.to(device).eval()
    return accelerate(model) if fast and device.type == "cpu" else model, tokenizer, saved


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
    `decode_cfg.workers` processes (nmt.decoding.parallel); n-best lists come back in input
    order."""
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


@dataclasses.dataclass(frozen=True)
class Translation:
    """One hypothesis of one sentence, as the Python API (nmt.Translator) gives it.

    Attributes:
        text: the detokenised translation (unknown words replaced where the decoding says so).
        score: its log-probability, length-normalised as the search was asked to.
        tokens: its target pieces, without <s> and </s>.
        attention: (len(tokens) + 1, S) weights of every output step, </s> included, over the
            S source pieces of `source_tokens`; None unless asked for.
        source_tokens: the source pieces, </s> last (cut as decode.max_src_len cut the source).
        heads: (H, len(tokens) + 1, S) each head's weights, with multi-head attention (their
            mean is `attention`); None otherwise or unless asked for.
    """

    text: str
    score: float
    tokens: list[str]
    attention: Tensor | None = None
    source_tokens: list[str] | None = None
    heads: Tensor | None = None


def to_translation(
    tokenizer,
    hyp: Hypothesis,
    source: str,
    text: str,
    attention: bool = False,
    model: Seq2Seq | None = None,
) -> Translation:
    """`hyp`, the search's hypothesis for `source`, rendered as `text`, as a Translation (with
    its attention over the source pieces if `attention`, and each head's if `model`, which
    found it, has multi-head attention)."""
    tokens = tokenizer.tgt_tokens(hyp.ids)
    if not attention:
        return Translation(text, hyp.score, tokens)
    src = tokenizer.src_tokens(source)
    S = hyp.attention.size(1)
    if len(src) > S:  # a source cut to decode.max_src_len
        src = src[: S - 1] + ["</s>"]
    heads = None
    if model is not None and has_heads(model):
        src_ids = cut_long_sources(tokenizer.encode_src([source]), S)[0]
        heads = head_weights(model, src_ids, hyp.ids)[:, :, : len(src)]
    return Translation(text, hyp.score, tokens, hyp.attention[:, : len(src)], src, heads)
