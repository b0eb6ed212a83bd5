"""OpenNMT-py's checkpoint of the benchmark model as nmt weights, so that nmt decodes the very
model OpenNMT-py decodes (`decode_vs_peer.py --same-weights`): both searches then do the same
work, and their hypotheses can be compared piece by piece.

An OpenNMT-py checkpoint is a pickle of its own (vocabularies, options) that only its own
environment can unpickle. `export` runs there, on the checkpoint OpenNMT-py's benchmark run
wrote, and keeps tensors and token lists only; nmt loads those with weights_only=True.

    OpenNMT-py 3.5 (brnn encoder, rnn decoder, general attention)   nmt protocol model
    encoder.embeddings.make_embedding.emb_luts.0.weight   encoder.embedding.weight, by piece
    encoder.rnn.*                                          encoder.rnn.* (the same nn.LSTM)
    decoder.embeddings.make_embedding.emb_luts.0.weight   decoder.embedding.weight, by piece
    decoder.rnn.layers.0.{weight,bias}_{ih,hh}             decoder.lstm.{weight,bias}_{ih,hh}_l0
    decoder.attn.linear_in.weight (W_in)                   decoder.attention.score.W_a.weight
        = W_in^T: OpenNMT-py scores (W_in h_t) . h_s = h_t^T W_in^T h_s, nmt h_t . (W_a h_s)
    decoder.attn.linear_out.weight                         decoder.W_c.weight
    generator.{weight,bias}                                generator.{weight,bias}, by piece

Pieces are matched by name; OpenNMT-py's <blank> is nmt's <pad>. A piece of OpenNMT-py's
vocabulary that nmt's lacks is left out (its probability mass with it); one of nmt's that
OpenNMT-py lacks gets a zero embedding and can never be produced. OpenNMT-py reads the source
without </s>, so nmt's source ids for this model leave it out (`source_ids`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from torch import Tensor

from nmt.data.specials import EOS

EXPORT = """
import sys, torch
saved = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
tensors = {**saved["model"], **{"generator." + k: v for k, v in saved["generator"].items()}}
torch.save({"tensors": tensors, "src": saved["vocab"]["src"], "tgt": saved["vocab"]["tgt"]},
           sys.argv[2])
"""

EMBEDDING = "{}.embeddings.make_embedding.emb_luts.0.weight"
SAME_NAME = {"<blank>": "<pad>"}  # OpenNMT-py's name -> nmt's


def export(python: Path, checkpoint: Path, out: Path) -> None:
    """Write OpenNMT-py's `checkpoint` as tensors and token lists to `out`, unpickled by
    OpenNMT-py's own `python`."""
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(python), "-c", EXPORT, str(checkpoint), str(out)],
        capture_output=True,
        text=True,
        env=os.environ | env,
    )
    if done.returncode != 0:
        raise SystemExit(f"{checkpoint}: export failed:\n{done.stderr[-2000:]}")


def rows_by_piece(theirs: Tensor, their_tokens: list[str], sp, fill: float = 0.0) -> Tensor:
    """Their rows (V', ...) reordered as nmt's ids (V, ...) by piece name; `fill` where they
    have no such piece."""
    index = {SAME_NAME.get(t, t): i for i, t in enumerate(their_tokens)}
    out = theirs.new_full((sp.get_piece_size(), *theirs.shape[1:]), fill)
    for i in range(sp.get_piece_size()):
        j = index.get(sp.id_to_piece(i))
        if j is not None:
            out[i] = theirs[j]
    return out


def convert(exported: dict, tokenizer) -> dict[str, Tensor]:
    """nmt's state_dict of the protocol model from `export`'s file."""
    t, src, tgt = exported["tensors"], exported["src"], exported["tgt"]
    state = {
        "encoder.embedding.weight": rows_by_piece(
            t[EMBEDDING.format("encoder")], src, tokenizer.src
        ),
        "decoder.embedding.weight": rows_by_piece(
            t[EMBEDDING.format("decoder")], tgt, tokenizer.tgt
        ),
        "decoder.attention.score.W_a.weight": t["decoder.attn.linear_in.weight"].t().contiguous(),
        "decoder.W_c.weight": t["decoder.attn.linear_out.weight"],
        "generator.weight": rows_by_piece(t["generator.weight"], tgt, tokenizer.tgt),
        "generator.bias": rows_by_piece(t["generator.bias"], tgt, tokenizer.tgt, float("-inf")),
    }
    for name, value in t.items():
        if name.startswith("encoder.rnn."):
            state[name] = value
        elif name.startswith("decoder.rnn.layers.0."):
            kind = name.rsplit(".", 1)[1]  # weight_ih, bias_hh, ...
            state[f"decoder.lstm.{kind}_l0"] = value
    return state


def source_ids(tokenizer, lines: list[str]) -> list[list[int]]:
    """nmt's source ids without the </s> that OpenNMT-py's source lacks."""
    return [ids[:-1] if ids[-1:] == [EOS] else ids for ids in tokenizer.encode_src(lines)]
