"""The builder (nmt/models/build.py): the presets' parts fit, and a misfit is one clear error."""

import pytest
from toys import V, model_cfg

from nmt.models.build import build_model


def test_rnnencdec_builds_with_a_fixed_context():
    model = build_model(model_cfg("model=rnnencdec"), src_vocab_size=V, tgt_vocab_size=V)
    assert type(model.decoder.attention).__name__ == "NoAttention"
    assert model.encoder.output_size == 12  # unidirectional


def test_dot_with_mismatched_sizes_is_rejected_listing_valid_choices():
    from nmt.errors import NmtError

    with pytest.raises(NmtError) as err:
        build_model(
            model_cfg("model=rnnsearch", "model/attention=luong_dot"),
            src_vocab_size=V,
            tgt_vocab_size=V,
        )
    message = str(err.value)
    assert "model.attention" in message and "query size" in message
    valid = message.split("valid with this model: ")[1].split(", ")
    assert valid == [
        *("bahdanau", "cosine", "coverage", "hard", "kernel", "local_m", "local_p"),
        *("luong_concat", "luong_general", "luong_location", "multihead", "none", "ntm"),
        "scaled_dot_projected",  # its projections meet in d_k
    ]  # not luong_dot nor scaled_dot, which need equal sizes


def test_luong_decoder_must_match_the_encoder_output():
    from nmt.errors import NmtError

    with pytest.raises(NmtError, match="model.decoder_size"):
        build_model(
            model_cfg("model=luong", "model.decoder_size=7"), src_vocab_size=V, tgt_vocab_size=V
        )
