"""The sequence-to-sequence model and its builder, the one place that instantiates model parts."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from nmt.batching import Batch
from nmt.config import CONFIG_DIR
from nmt.encoder import EncoderOutput
from nmt.errors import NmtError
from nmt.init import initialize
from nmt.loss import linear_cross_entropy
from nmt.packed import Linear


class Seq2Seq(nn.Module):
    """Encoder, decoder and the output layer W_o: p(y_t | ...) = softmax(W_o features_t)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, tgt_vocab_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.generator = Linear(decoder.output_size, tgt_vocab_size)

    def encode(self, src: Tensor, src_mask: Tensor) -> EncoderOutput:
        return self.encoder(src, src_mask)

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed token cross-entropy of the batch; the output layer runs on real tokens only,
        in chunks (nmt/loss.py)."""
        features, _ = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        return linear_cross_entropy(
            features[batch.tgt_mask],  # (N real tokens, H)
            self.generator.weight,
            self.generator.bias,
            batch.tgt_out[batch.tgt_mask],
            label_smoothing,
        )

    def attention_weights(self, batch: Batch) -> Tensor:
        """Teacher-forced attention weights (B, T, S)."""
        _, weights = self.decoder(self.encode(batch.src, batch.src_mask), batch.tgt_in)
        return weights


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build(cfg: DictConfig, key: str, **sizes: object) -> nn.Module:
    try:
        return instantiate(cfg, **sizes)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, NmtError):
            raise NmtError(f"{key}: {cause}") from None
        raise NmtError(f"{key}: {cause or err}") from None


def attention_options() -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / "model" / "attention").glob("*.yaml"))


def valid_attention(query_size: int, key_size: int) -> list[str]:
    """The attention configs that build for these sizes (for error messages)."""
    valid = []
    for name in attention_options():
        cfg = OmegaConf.load(Path(CONFIG_DIR) / "model" / "attention" / f"{name}.yaml")
        try:
            instantiate(cfg, query_size=query_size, key_size=key_size)
        except InstantiationException:
            continue
        valid.append(name)
    return valid


def build_model(cfg: DictConfig, *, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """Build a model from the `model` config group, passing the sizes each part derives from.

    Args:
        cfg: the `model` node: emb_size, hidden_size (encoder units per direction), decoder_size
            (null: the encoder output size), init, and the `encoder`, `decoder` and `attention`
            sub-configs (each with a `_target_`).
    """
    encoder = _build(
        cfg.encoder,
        "model.encoder",
        vocab_size=src_vocab_size,
        emb_size=cfg.emb_size,
        hidden_size=cfg.hidden_size,
    )
    decoder_size = cfg.decoder_size or encoder.output_size
    try:
        attention = instantiate(
            cfg.attention, query_size=decoder_size, key_size=encoder.output_size
        )
    except InstantiationException as err:
        valid = ", ".join(valid_attention(decoder_size, encoder.output_size))
        raise NmtError(
            f"model.attention: {err.__cause__ or err}; valid with this model: {valid}"
        ) from None
    decoder = _build(
        cfg.decoder,
        "model.decoder",
        vocab_size=tgt_vocab_size,
        emb_size=cfg.emb_size,
        hidden_size=decoder_size,
        memory_size=encoder.output_size,
        encoder_size=encoder.hidden_size,
        attention=attention,
    )
    model = Seq2Seq(encoder, decoder, tgt_vocab_size)
    initialize(model, cfg.init)
    return model


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NmtError(f"device={name}: no CUDA device is available (use device=cpu or auto)")
    return torch.device(name)
