"""The Python API: a trained model, its tokenizer and its decoding settings in one object.

    from nmt import Translator

    translator = Translator.from_checkpoint("outputs/runs/.../checkpoints/best.pt")
    [best], = translator.translate(["Im Anfang schuf Gott Himmel und Erde."])
    print(best.text, best.score)
    translator.score(["Im Anfang ..."], ["In the beginning ..."]).perplexity

`nmt-translate` is a thin command over the same object.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf

from nmt.config import DecodeConfig, defaults, typed
from nmt.data import normalize
from nmt.data.batching import make_batch, sorted_batches
from nmt.decoding.translate import (
    Renderer,
    Translation,
    load_model,
    to_translation,
    translate_lines,
)
from nmt.devices import resolve_device
from nmt.errors import NmtError
from nmt.models.seq2seq import Seq2Seq
from nmt.trust import allowed_modules


@dataclasses.dataclass(frozen=True)
class Scores:
    """Teacher-forced scores of (source, target) pairs.

    Attributes:
        log_probs: per pair, the natural-log probability of its target pieces and </s>.
        n_tokens: per pair, how many target pieces (with </s>) were scored.
    """

    log_probs: list[float]
    n_tokens: list[int]

    @property
    def perplexity(self) -> float:
        """exp of the mean negative log-probability per target token, over all pairs."""
        return math.exp(-sum(self.log_probs) / max(sum(self.n_tokens), 1))


class Translator:
    """A model, its tokenizer, a device and the decoding settings `translate` starts from.

    Args:
        model: a trained Seq2Seq (in eval mode on `device`).
        tokenizer: the tokenizer it was trained with.
        device: where the model is.
        decode: the default decoding settings (a `DecodeConfig`; greedy search by default).
    """

    def __init__(
        self, model: Seq2Seq, tokenizer, device: torch.device, decode: DecodeConfig | None = None
    ) -> None:
        self.model, self.tokenizer, self.device = model.eval(), tokenizer, device
        self.decode = decode or defaults(DecodeConfig)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        fast: bool = True,
        decode: DecodeConfig | None = None,
        allow_targets: Sequence[str] = (),
    ) -> Translator:
        """Rebuild model and tokenizer from a checkpoint alone (loaded with weights_only=True).

        Args:
            path: a checkpoint of `nmt-train` (RUN_DIR/checkpoints/best.pt or last.pt).
            device: "auto" (CUDA if there is one), "cpu", "cuda" or "cuda:N".
            fast: put the fast CPU layer (nmt.fast) on the model; False runs the reference.
            decode: the default decoding; None takes the one the run scored its test set with.
            allow_targets: modules (or classes) outside nmt whose classes the checkpoint's
                config may build, e.g. a plug-in attention's module; without them a
                checkpoint builds only nmt's own classes (nmt.trust).
        """
        where = resolve_device(device)
        allow = allowed_modules(allow_targets)
        model, tokenizer, saved = load_model(str(path), where, fast, allow)
        if decode is None and saved["config"].get("decode"):
            decode = typed(DecodeConfig, OmegaConf.create(saved["config"]["decode"]), "decode")
        return cls(model, tokenizer, where, decode)

    def translate(
        self,
        sentences: Sequence[str],
        *,
        beam_size: int | None = None,
        n_best: int | None = None,
        attention: bool = False,
        **decode: object,
    ) -> list[list[Translation]]:
        """Translate raw sentences; for each, its `n_best` hypotheses, best first.

        Args:
            sentences: raw source sentences (whitespace is normalised; an empty one gives one
                empty translation, without attention).
            beam_size: 1 for greedy search; None keeps the default decoding's.
            n_best: hypotheses per sentence (at most the beam size); None keeps the default's.
            attention: give each hypothesis its attention weights.
            decode: any other `decode` key (length_penalty, alpha, max_len_ratio, unk_replace,
                ...), as `nmt-translate decode.KEY=VALUE` takes it.
        """
        if isinstance(sentences, str):
            raise NmtError("translate: sentences must be a list of strings, not one string")
        for i, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise NmtError(
                    f"translate: sentence {i} is {type(sentence).__name__} {sentence!r}, "
                    "not a string"
                )
        config = self.decoding(beam_size=beam_size, n_best=n_best, **decode)
        lines = [normalize(s) for s in sentences]
        given = [i for i, line in enumerate(lines) if line]
        kept = [lines[i] for i in given]
        found = (
            translate_lines(self.model, self.tokenizer, kept, config, self.device) if kept else []
        )
        render = Renderer(self.tokenizer, config)
        out: list[list[Translation]] = [[Translation("", 0.0, [])] for _ in lines]
        for i, nbest in zip(given, found, strict=True):
            line = lines[i]
            out[i] = [
                to_translation(self.tokenizer, h, line, render(h, line), attention, self.model)
                for h in nbest
            ]
        return out

    def decoding(self, **changes: object) -> DecodeConfig:
        """The default decoding with `changes` (None: unchanged), checked as the `decode` group
        would be."""
        changes = {key: value for key, value in changes.items() if value is not None}
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(DecodeConfig)})
        if unknown:
            raise NmtError(f"translate: unknown decoding option '{unknown[0]}'")
        base = OmegaConf.create(dataclasses.asdict(self.decode))
        return typed(DecodeConfig, OmegaConf.merge(base, changes), "decode")

    @torch.inference_mode()
    def score(self, sources: Sequence[str], targets: Sequence[str]) -> Scores:
        """The model's teacher-forced log-probability of each target given its source."""
        if len(sources) != len(targets):
            raise NmtError(
                f"score: {len(sources)} sources but {len(targets)} targets; they pair line by line"
            )
        src_ids = self.tokenizer.encode_src([normalize(s) for s in sources])
        tgt_ids = self.tokenizer.encode_tgt([normalize(t) for t in targets])
        log_probs, n_tokens = [0.0] * len(src_ids), [0] * len(src_ids)
        for index in sorted_batches([len(s) for s in src_ids], self.decode.batch_size):
            batch = make_batch(src_ids, tgt_ids, index).to(self.device)
            enc = self.model.encode(batch.src, batch.src_mask)
            features, weights = self.model.decoder(enc, batch.tgt_in)  # (B, T, H), (B, T, S)
            logp = self.model.teacher_forced_log_probs(enc, features, weights, batch.tgt_in)
            picked = logp.gather(-1, batch.tgt_out.reshape(-1, 1)).view(batch.tgt_out.shape)
            sums = picked.masked_fill(~batch.tgt_mask, 0.0).sum(-1)
            for k, i in enumerate(index):
                log_probs[i], n_tokens[i] = float(sums[k]), int(batch.tgt_mask[k].sum())
        return Scores(log_probs, n_tokens)
