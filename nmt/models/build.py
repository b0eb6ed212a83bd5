"""The model builder: the one place that instantiates model parts from the `model` config."""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from nmt.config import CONFIG_DIR, instantiate_or_fail
from nmt.errors import NmtError
from nmt.models.decoder import DecoderSizes
from nmt.models.init import initialize
from nmt.models.seq2seq import Seq2Seq
from nmt.trust import FORMER_HOMES


def moved_targets(cfg: DictConfig) -> DictConfig:
    """The `model` node with each part's `_target_` at its present home."""
    cfg = cfg.copy()
    for part in ("encoder", "decoder", "attention"):
        target = OmegaConf.select(cfg, f"{part}._target_")
        for old, new in FORMER_HOMES.items():
            if isinstance(target, str) and target.startswith(old):
                OmegaConf.update(cfg, f"{part}._target_", new + target[len(old) :])
    return cfg


ATTENTION_DIR = Path(CONFIG_DIR) / "model" / "attention"


def attention_options() -> list[str]:
    """The options of `model/attention` (its YAML files)."""
    return sorted(p.stem for p in ATTENTION_DIR.glob("*.yaml"))


def attention_config(name: str) -> DictConfig:
    """model/attention=NAME as Hydra composes it: its file, with its default score's file as
    the `score` node."""
    cfg = OmegaConf.load(ATTENTION_DIR / f"{name}.yaml")
    defaults = cfg.pop("defaults", [])
    for entry in defaults:
        if isinstance(entry, DictConfig) and "score" in entry:
            cfg.score = OmegaConf.load(ATTENTION_DIR / "score" / f"{entry.score}.yaml")
    return cfg


def build_attention(cfg: DictConfig, **sizes: int | bool) -> nn.Module:
    """The attention variant of a `model.attention` node. Its `score` node, if any, reaches the
    variant as a factory that builds the score for the sizes the variant chooses (multi-head
    attention scores each head's projections)."""
    score = cfg.get("score")
    if not isinstance(score, DictConfig):
        return instantiate_or_fail(cfg, "model.attention", **sizes)
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "score"])
    factory = functools.partial(instantiate_or_fail, score, "model.attention.score")
    return instantiate_or_fail(cfg, "model.attention", score=factory, **sizes)


def valid_attention(query_size: int, key_size: int) -> list[str]:
    """The attention configs that build for these sizes (for error messages)."""
    valid = []
    for name in attention_options():
        try:
            build_attention(attention_config(name), query_size=query_size, key_size=key_size)
        except NmtError:
            continue
        valid.append(name)
    return valid


def is_fixed_context(cfg: DictConfig) -> bool:
    """Whether the `model` node's attention is none (NoAttention, the fixed context)."""
    return str(OmegaConf.select(cfg, "attention._target_", default="")).endswith(".NoAttention")


def check_copy(cfg: DictConfig, joint_vocab: bool) -> None:
    """model.copy needs source ids that are target ids, and an attention to point with."""
    if not cfg.get("copy", False):
        return
    if not joint_vocab:
        raise NmtError(
            "model.copy: copying needs a joint vocabulary, where source ids are target ids "
            "(a SentencePiece tokenizer with tokenizer.joint=true)"
        )
    if is_fixed_context(cfg):
        raise NmtError(
            "model.copy: copying points with the attention, and model/attention=none has none"
        )


def build_model(
    cfg: DictConfig, *, src_vocab_size: int, tgt_vocab_size: int, joint_vocab: bool = False
) -> Seq2Seq:
    """Build a model from the `model` config group, passing the sizes each part derives from.

    Args:
        cfg: the `model` node: emb_size, hidden_size (encoder units per direction), decoder_size
            (null: the encoder output size), init, copy (the pointer-generator output layer),
            and the `encoder`, `decoder` and `attention` sub-configs (each with a `_target_`).
        joint_vocab: whether source and target share one vocabulary (copying needs it).
    """
    cfg = moved_targets(cfg)
    check_copy(cfg, joint_vocab)
    encoder = instantiate_or_fail(
        cfg.encoder,
        "model.encoder",
        vocab_size=src_vocab_size,
        emb_size=cfg.emb_size,
        hidden_size=cfg.hidden_size,
    )
    decoder_size = cfg.decoder_size or encoder.output_size
    # the fixed context is where the encoder's reading ends, which depends on how it reads
    reading = {
        "directions": getattr(encoder, "directions", 1),
        "reverse": getattr(encoder, "reverse", False),
    }
    try:
        attention = build_attention(
            cfg.attention,
            query_size=decoder_size,
            key_size=encoder.output_size,
            **(reading if is_fixed_context(cfg) else {}),
        )
    except NmtError as err:
        valid = ", ".join(valid_attention(decoder_size, encoder.output_size))
        raise NmtError(f"{err}; valid with this model: {valid}") from None
    sizes = DecoderSizes(
        vocab_size=tgt_vocab_size,
        emb_size=cfg.emb_size,
        hidden_size=decoder_size,
        memory_size=encoder.output_size,
        encoder_size=encoder.hidden_size,
    )
    # "object" hands the decoder `sizes` as the dataclass, not as a config node
    decoder = instantiate_or_fail(
        cfg.decoder, "model.decoder", sizes=sizes, attention=attention, _convert_="object"
    )
    model = Seq2Seq(encoder, decoder, tgt_vocab_size, copy=bool(cfg.get("copy", False)))
    initialize(model, cfg.init)
    return model
