import pytest
import torch
from hydra import compose, initialize_config_dir

from nmt.config import CONFIG_DIR
from nmt.data.batching import make_batch
from nmt.data.specials import BOS, EOS
from nmt.decoding.search import greedy
from nmt.models.build import build_model
from nmt.models.encoder import reverse_padded

V = 40


def model_cfg(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model.emb_size=8", "model.hidden_size=12", *overrides])
    return cfg.model


def toy_batch():
    g = torch.Generator().manual_seed(0)
    src = [torch.randint(4, V, (n,), generator=g).tolist() + [EOS] for n in (5, 2, 7)]
    tgt = [[BOS] + torch.randint(4, V, (n,), generator=g).tolist() + [EOS] for n in (3, 6, 1)]
    return src, tgt


def build(*overrides):
    torch.manual_seed(0)
    model = build_model(model_cfg(*overrides), src_vocab_size=V, tgt_vocab_size=V).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model


ATTENTIONS = [
    "none",
    "bahdanau",
    "luong_dot",
    "luong_general",
    "luong_concat",
    "luong_location",
    "local_m",
    "local_p",
]
MODELS = [
    ["model=rnnsearch"],
    ["model=rnnencdec"],
    *[["model=luong", f"model/attention={a}", "model.encoder.num_layers=2"] for a in ATTENTIONS],
    ["model=luong", "model.decoder.input_feed=false", "model/attention=local_p"],
    ["model=luong", "model.decoder.input_feed=false", "model/attention=luong_dot"],
    ["model=luong", "model/encoder=bilstm", "model/attention=luong_dot"],
    ["model=luong", "model/encoder=bigru", "model.encoder.reverse=true"],
    ["model=rnnsearch", "model/attention=local_m", "model.attention.window=1"],
]
IDS = [" ".join(m).replace("model", "") for m in MODELS]


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_teacher_forcing_equals_step_by_step(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    enc = model.encode(batch.src, batch.src_mask)
    features, weights = model.decoder(enc, batch.tgt_in)
    keys = model.decoder.attention.project_keys(enc.memory)
    state = model.decoder.start(enc)
    for t in range(batch.tgt_in.size(1)):
        f_t, state, w_t = model.decoder.step(batch.tgt_in[:, t], state, enc, keys, t)
        torch.testing.assert_close(f_t, features[:, t])
        torch.testing.assert_close(w_t, weights[:, t])


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_a_sentence_scores_the_same_alone_and_in_a_padded_batch(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    together = make_batch(src, tgt, [0, 1, 2])
    with torch.no_grad():
        f_all, _ = model.decoder(model.encode(together.src, together.src_mask), together.tgt_in)
        for row in range(3):
            alone = make_batch(src, tgt, [row])
            f_one, _ = model.decoder(model.encode(alone.src, alone.src_mask), alone.tgt_in)
            n = alone.tgt_in.size(1)
            torch.testing.assert_close(f_all[row, :n], f_one[0])
        hyps_all = greedy(model, together.src, together.src_mask, max_len_ratio=2, max_len_extra=3)
        for row in range(3):
            alone = make_batch(src, tgt, [row])
            (hyp,) = greedy(model, alone.src, alone.src_mask, max_len_ratio=2, max_len_extra=3)
            assert hyp.ids == hyps_all[row].ids


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_loss_uses_real_tokens_only(overrides):
    model = build(*overrides)
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    total = model.loss(batch)
    parts = sum(model.loss(make_batch(src, tgt, [i])) for i in range(3))
    torch.testing.assert_close(total, parts)


def test_encoder_packs_padding_away_and_reversal_keeps_source_order():
    for reverse in (False, True):
        model = build(f"model.encoder.reverse={reverse}")
        src, tgt = toy_batch()
        batch = make_batch(src, tgt, [0, 1, 2])
        with torch.no_grad():
            memory = model.encode(batch.src, batch.src_mask).memory
            for row in range(3):
                alone = make_batch(src, tgt, [row])
                n = alone.src.size(1)
                torch.testing.assert_close(
                    memory[row, :n], model.encode(alone.src, alone.src_mask).memory[0]
                )


def test_reverse_padded_reverses_only_real_steps():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert reverse_padded(x, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_rnnencdec_builds_with_a_fixed_context():
    model = build_model(model_cfg("model=rnnencdec"), src_vocab_size=V, tgt_vocab_size=V)
    assert type(model.decoder.attention).__name__ == "NoAttention"
    assert model.encoder.output_size == 12  # unidirectional


@pytest.mark.parametrize("overrides", MODELS, ids=IDS)
def test_every_pairing_trains_a_few_steps(overrides):
    model = build(*overrides).train()
    src, tgt = toy_batch()
    batch = make_batch(src, tgt, [0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = model.loss(batch) / batch.n_tokens
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


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
    assert (
        "valid with this model: bahdanau, local_m, local_p, luong_concat, luong_general" in message
    )


def test_luong_decoder_must_match_the_encoder_output():
    from nmt.errors import NmtError

    with pytest.raises(NmtError, match="model.decoder_size"):
        build_model(
            model_cfg("model=luong", "model.decoder_size=7"), src_vocab_size=V, tgt_vocab_size=V
        )
