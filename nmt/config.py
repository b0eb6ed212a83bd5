"""Config plumbing shared by the console scripts: where configs and caches live, typed views of
the non-instantiated groups, and building parts from config nodes. The resolvers the YAML files
use are nmt.resolvers, registered on import."""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nmt.errors import NmtError
from nmt.resolvers import register_resolvers

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent
# A built wheel carries the configs inside the package; a source checkout has them beside it.
CONFIG_DIR = str(
    _PACKAGE_DIR / "configs"
    if (_PACKAGE_DIR / "configs").is_dir()
    else _PACKAGE_DIR.parent / "configs"
)


def default_cache_dir() -> Path:
    """$NMT_CACHE_DIR, else ./data of a source checkout, else ~/.cache/nmt."""
    if os.environ.get("NMT_CACHE_DIR"):
        return Path(os.environ["NMT_CACHE_DIR"])
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "data").is_dir():
        return checkout / "data"
    return Path.home() / ".cache" / "nmt"


def cache_dir(given: str | None) -> Path:
    """`paths.cache_dir` if given, else `default_cache_dir()`; made if missing."""
    path = Path(given) if given else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


register_resolvers()


PRECISIONS = (
    "float32",
    "bfloat16",
    "float16",
)  # trainer.precision, decode.precision: of matrix products


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """The `trainer` group (configs/trainer/default.yaml says what each key means)."""

    FILE: ClassVar[str] = "trainer/default"
    max_steps: int | None
    max_epochs: int
    batch_size: int
    batch_tokens: int | None
    bucket_pool: int
    valid_every: int
    valid_bleu: bool
    early_stop_metric: str
    patience: int | None
    log_every: int
    label_smoothing: float
    num_threads: int | None
    precision: str
    max_nonfinite: int
    devices: int

    def __post_init__(self) -> None:
        at_least("trainer.devices", self.devices, 1)
        for name in ("max_steps", "max_epochs", "batch_size", "batch_tokens", "bucket_pool"):
            at_least(f"trainer.{name}", getattr(self, name), 1)
        for name in ("valid_every", "patience", "log_every", "num_threads", "max_nonfinite"):
            at_least(f"trainer.{name}", getattr(self, name), 1)
        if not 0 <= self.label_smoothing < 1:
            raise NmtError(
                f"trainer.label_smoothing: must be in [0, 1), got {self.label_smoothing}"
            )
        if self.precision not in PRECISIONS:
            raise NmtError(
                f"trainer.precision: '{self.precision}' is not one of {', '.join(PRECISIONS)}"
            )
        if self.early_stop_metric not in ("dev_bleu", "dev_loss"):
            raise NmtError(
                f"trainer.early_stop_metric: '{self.early_stop_metric}' is not one of "
                "dev_bleu, dev_loss"
            )
        if self.early_stop_metric == "dev_bleu" and not self.valid_bleu:
            raise NmtError("trainer.early_stop_metric=dev_bleu needs trainer.valid_bleu=true")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """The `decode` group (configs/decode/greedy.yaml)."""

    FILE: ClassVar[str] = "decode/greedy"
    beam_size: int
    length_penalty: str
    alpha: float
    n_best: int
    max_len_ratio: float
    max_len_extra: int
    batch_size: int
    unk_replace: bool
    unk_dict: str | None
    stop: str
    precision: str
    workers: int
    max_src_len: int

    def __post_init__(self) -> None:
        at_least("decode.max_src_len", self.max_src_len, 2)  # a piece and </s>
        for name in ("workers", "batch_size"):
            at_least(f"decode.{name}", getattr(self, name), 1)
        for name in ("max_len_ratio", "max_len_extra", "alpha"):
            at_least(f"decode.{name}", getattr(self, name), 0)
        if self.precision not in PRECISIONS:
            raise NmtError(
                f"decode.precision: '{self.precision}' is not one of {', '.join(PRECISIONS)}"
            )
        at_least("decode.beam_size", self.beam_size, 1)
        if self.length_penalty not in ("none", "average", "gnmt"):
            raise NmtError(
                f"decode.length_penalty: '{self.length_penalty}' is not one of none, average, gnmt"
            )
        if self.stop not in ("k_finished", "best_finished"):
            raise NmtError(f"decode.stop: '{self.stop}' is not one of k_finished, best_finished")
        if not 1 <= self.n_best <= self.beam_size:
            raise NmtError(f"decode.n_best: must be between 1 and beam_size ({self.beam_size})")


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """The `tokenizer` group (configs/tokenizer/spm_bpe.yaml)."""

    FILE: ClassVar[str] = "tokenizer/spm_bpe"
    model_type: str
    src_lang: str | None
    tgt_lang: str | None
    vocab_size: int
    joint: bool
    character_coverage: float

    def __post_init__(self) -> None:
        # a word vocabulary's K words come beside its 4 specials; SentencePiece's include them
        at_least("tokenizer.vocab_size", self.vocab_size, 1 if self.model_type == "word" else 8)
        if not 0 < self.character_coverage <= 1:
            raise NmtError(
                f"tokenizer.character_coverage: must be in (0, 1], got {self.character_coverage}"
            )
        if self.model_type not in ("bpe", "unigram", "word"):
            raise NmtError(
                f"tokenizer.model_type: '{self.model_type}' is not one of bpe, unigram, word"
            )
        if self.model_type == "word" and self.joint:
            raise NmtError("tokenizer.joint: the word vocabulary is per language (joint=false)")


T = TypeVar("T")


KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _check_type(key: str, value: Any, hint: Any) -> None:
    """Refuse a value whose type the field's hint (int, float, bool, str, X | None) rules out."""
    allowed = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    if value is None and type(None) in allowed:
        return
    for kind in allowed:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if kind in (bool, str) and isinstance(value, kind):
            return
    wanted = " or ".join(KINDS.get(k, "null") for k in allowed)
    raise NmtError(f"{key}: {value!r} is not {wanted}")


def at_least(key: str, value: float | None, low: float) -> None:
    """Refuse a number below `low` (None passes: the fields that allow it mean 'no limit')."""
    if value is not None and value < low:
        raise NmtError(f"{key}: must be at least {low}, got {value}")


def defaults(cls: type[T], **changes: Any) -> T:
    """`cls` as its group's default file (`cls.FILE` under configs/) sets it, with `changes`:
    the YAML is the one home of every default."""
    cfg = OmegaConf.load(Path(CONFIG_DIR) / f"{cls.FILE}.yaml")
    return typed(cls, OmegaConf.merge(cfg, changes), cls.FILE.split("/")[0])


def typed(cls: type[T], cfg: DictConfig, key: str) -> T:
    """Read config group `key` into the dataclass `cls`; an unknown key or a value of the wrong
    type is an error naming it (the dataclass checks ranges). A key the group lacks, as in a
    config saved before the key existed, takes its value from the group's default file."""
    values = OmegaConf.to_container(cfg, resolve=True)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise NmtError(
            f"unknown config key '{key}.{unknown[0]}' (valid keys: {', '.join(sorted(known))})"
        )
    missing = sorted(known - set(values))
    if missing and hasattr(cls, "FILE"):
        base = OmegaConf.load(Path(CONFIG_DIR) / f"{cls.FILE}.yaml")
        values = {name: base[name] for name in missing if name in base} | values
        missing = sorted(known - set(values))
    if missing:
        raise NmtError(f"config key '{key}.{missing[0]}' is missing")
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        _check_type(f"{key}.{name}", value, hints[name])
    return cls(**values)


def instantiate_or_fail(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate(cfg, **kwargs)`, its failure one NmtError naming `key` (a
    builder's own NmtError that already names it stays as it is)."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, NmtError) and str(cause).startswith(key):
            raise cause from None
        raise NmtError(f"{key}: {cause or err}") from None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The `optim` group's schedule: the base learning rate (its optimizer's `lr`), gradient
    clipping, halving the rate every epoch after `halve_after_epoch` (1-based), and halving it
    on a plateau: after `plateau_patience` validations in a row without a better dev score
    (Luong et al.'s halving, JoeyNMT's `plateau` scheduler), the run stopping once the rate is
    below `lr_floor` times the base rate."""

    lr: float
    clip_norm: float | None
    halve_after_epoch: int | None
    halve_factor: float
    plateau_patience: int | None = None
    lr_floor: float | None = None

    def __post_init__(self) -> None:
        at_least("optim.optimizer.lr", self.lr, 0)
        at_least("optim.clip_norm", self.clip_norm, 0)
        at_least("optim.halve_after_epoch", self.halve_after_epoch, 1)
        at_least("optim.plateau_patience", self.plateau_patience, 1)
        if not 0 < self.halve_factor < 1:
            raise NmtError(f"optim.halve_factor: must be in (0, 1), got {self.halve_factor}")
        if self.lr_floor is not None and not 0 < self.lr_floor < 1:
            raise NmtError(f"optim.lr_floor: must be in (0, 1), got {self.lr_floor}")

    def lr_at(self, epoch: int, scale: float = 1.0) -> float:
        """The rate of 0-based `epoch`, times `scale` (what the plateau halvings left)."""
        if self.halve_after_epoch is None:
            return self.lr * scale
        return self.lr * scale * self.halve_factor ** max(0, epoch + 1 - self.halve_after_epoch)


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """What one `nmt-train` run reads, typed once by the command and passed down. The groups
    that name classes to build stay config nodes for their builders."""

    seed: int
    device: str
    fast: bool  # put the fast CPU layer on the model (nmt.fast.accelerate)
    resume: str | None
    reset: tuple[str, ...]  # with resume: "optimizer", "early_stopping" (nmt.training.start)
    init_from: str | None  # a checkpoint whose weights start a new run
    cache_dir: Path
    trainer: TrainerConfig
    decode: DecodeConfig
    tokenizer: TokenizerConfig
    schedule: Schedule
    model: DictConfig  # built by nmt.models.build.build_model
    data: DictConfig  # its `corpus` loaded by nmt.data.load_corpus
    optimizer: DictConfig  # instantiated with the model's parameters
    saved: dict  # the whole resolved config, which every checkpoint keeps
    callbacks: DictConfig | dict = dataclasses.field(default_factory=dict)  # name -> node


RESETS = ("optimizer", "early_stopping")  # what `reset=[...]` may name when resuming


def check_resets(cfg: DictConfig) -> tuple[str, ...]:
    """`reset` as a tuple of known names; given without resume=, an error."""
    given = cfg.get("reset") or ()
    resets = (given,) if isinstance(given, str) else tuple(given)  # reset=optimizer or [...]
    unknown = [name for name in resets if name not in RESETS]
    if unknown:
        raise NmtError(f"reset: '{unknown[0]}' is not one of {', '.join(RESETS)}")
    if resets and not cfg.resume:
        raise NmtError("reset: only with resume=RUN_DIR (a fresh run has nothing to reset)")
    return resets


def whole(cfg: DictConfig, key: str, low: int) -> int:
    """The top-level whole number `key`, at least `low`; anything else an error naming it."""
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise NmtError(f"{key}: {value!r} is not a whole number")
    at_least(key, value, low)
    return value


def strings(cfg: DictConfig, key: str) -> list[str]:
    """The top-level list of strings `key` (`key=[a,b]` on the command line); anything else,
    a bare string included, an error naming it."""
    value = cfg[key]
    if not OmegaConf.is_list(value) or not all(isinstance(v, str) for v in value):
        raise NmtError(f"{key}: {value!r} is not a list of strings ({key}=[a,b])")
    return list(value)


def typed_flag(cfg: DictConfig, key: str) -> bool:
    """The top-level switch `key`: true or false, anything else an error naming it."""
    value = cfg[key]
    if not isinstance(value, bool):
        raise NmtError(f"{key}: {value!r} is not true or false")
    return value


def train_job(cfg: DictConfig) -> TrainJob:
    """The typed view of `nmt-train`'s config, every value checked before any work: the typed
    groups' types and ranges, and the sizes the builder and the corpus take."""
    sizes = ("model.emb_size", "model.hidden_size", "model.decoder_size", "data.max_len")
    for key in (*sizes, "data.max_pieces"):
        value = OmegaConf.select(cfg, key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise NmtError(f"{key}: {value!r} is not an integer")
        at_least(key, value, 4 if key == "data.max_pieces" else 1)  # <s> a piece </s>
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise NmtError(f"seed: {cfg.seed!r} is not an integer")
    optim = cfg.optim
    keys = ("clip_norm", "halve_after_epoch", "halve_factor", "plateau_patience", "lr_floor")
    schedule = {k: optim.get(k) for k in keys}
    return TrainJob(
        seed=cfg.seed,
        device=str(cfg.device),
        fast=typed_flag(cfg, "fast"),
        resume=None if cfg.resume is None else str(cfg.resume),
        reset=check_resets(cfg),
        init_from=None if cfg.get("init_from") is None else str(cfg.init_from),
        cache_dir=cache_dir(cfg.paths.cache_dir),
        trainer=typed(TrainerConfig, cfg.trainer, "trainer"),
        decode=typed(DecodeConfig, cfg.decode, "decode"),
        tokenizer=typed(TokenizerConfig, cfg.tokenizer, "tokenizer"),
        schedule=typed(Schedule, OmegaConf.create({"lr": optim.optimizer.lr, **schedule}), "optim"),
        model=cfg.model,
        data=cfg.data,
        optimizer=optim.optimizer,
        saved=OmegaConf.to_container(cfg, resolve=True),
        callbacks=cfg.get("callbacks") or {},
    )
