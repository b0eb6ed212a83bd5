"""Every config option composes, and every model preset builds."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from nmt.config import CONFIG_DIR
from nmt.models.build import build_model


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "override",
    [
        f"{group}={name}"
        for group in ("data", "tokenizer", "model", "optim", "trainer", "decode", "scale")
        for name in options(group)
    ],
)
def test_every_group_option_composes(override):
    cfg = compose_train(override)
    assert cfg.seed is not None


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("scale", options("scale"))
def test_every_model_preset_builds_at_every_scale(model, scale):
    cfg = compose_train(
        f"model={model}", f"scale={scale}", "model.emb_size=8", "model.hidden_size=8"
    )
    built = build_model(cfg.model, src_vocab_size=20, tgt_vocab_size=30)
    assert built.generator.out_features == 30


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_cites_its_paper_and_builds(experiment):
    text = (Path(CONFIG_DIR) / "experiment" / f"{experiment}.yaml").read_text().splitlines()
    assert text[0] == "# @package _global_"
    papers = ("# Bahdanau et al. 2014, Table", "# Luong et al. 2015, Table")
    assert text[1].startswith((*papers, "# The attention zoo (nmt-reproduce paper=zoo), row"))
    cfg = compose_train(f"experiment={experiment}", "model.emb_size=8", "model.hidden_size=8")
    joint = cfg.tokenizer.joint
    built = build_model(cfg.model, src_vocab_size=20, tgt_vocab_size=30, joint_vocab=joint)
    assert built.generator.out_features == 30


def test_paper_sizes_are_the_model_presets_own():
    cfg = compose_train("scale=paper")
    assert (cfg.model.emb_size, cfg.model.hidden_size) == (620, 1000)


@pytest.mark.parametrize("name", ["evaluate", "translate"])
def test_other_apps_compose(name):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=["checkpoint=x.pt"])
    assert cfg.decode.beam_size == 1


def test_wheel_carries_the_configs(tmp_path):
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("nmt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for config in (
        "train.yaml",
        "evaluate.yaml",
        "translate.yaml",
        "model/attention/bahdanau.yaml",
    ):
        assert f"nmt/configs/{config}" in names


def test_a_config_saved_before_a_key_existed_takes_the_groups_default():
    """Runs saved before decode.max_src_len (and other later keys) still load."""
    from omegaconf import OmegaConf

    from nmt.config import DecodeConfig, typed

    old = OmegaConf.create({"beam_size": 5, "n_best": 1})
    decode = typed(DecodeConfig, old, "decode")
    assert decode.beam_size == 5 and decode.max_src_len == 256
