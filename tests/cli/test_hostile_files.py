"""A checkpoint or a run directory from someone else is data: through every entry point (the
console scripts and the API), a config read from a file that names anything outside nmt's own
classes, at any depth, is refused in one line before anything is built or written, and a
sentinel file beside the test stays as it was. An honest checkpoint still loads."""

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from toys import TINY, train_toy

from nmt.decoding.translator import Translator
from nmt.errors import NmtError

SENTINEL_TEXT = "the user's own file\n"


class RunsAShellCommand:
    """Unpickled, runs `command` (what a pickle shipped beside a checkpoint can do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture(scope="module")
def honest(tmp_path_factory, cache_dir) -> Path:
    """A tiny trained run directory (its checkpoints and saved config are the honest ones)."""
    run = tmp_path_factory.mktemp("honest") / "run"
    train_toy(run, cache_dir, *TINY)
    return run


@pytest.fixture
def bait(tmp_path) -> dict:
    """A sentinel file the hostile configs aim at, a mark a shell command would leave, and a
    pickle that would run that command if anything unpickled it."""
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text(SENTINEL_TEXT)
    mark = tmp_path / "pwned"
    shipped = tmp_path / "shipped.pkl"
    shipped.write_bytes(pickle.dumps(RunsAShellCommand(f"touch {mark}")))
    return {"sentinel": sentinel, "mark": mark, "pickle": shipped}


def hostile_nodes(bait: dict) -> dict[str, dict]:
    """Targets that write a file, unpickle, open a browser, copy a private file."""
    return {
        "opens for writing": {
            "_target_": "builtins.open",
            "file": str(bait["sentinel"]),
            "mode": "w",
        },
        "unpickles": {"_target_": "torch.load", "f": str(bait["pickle"]), "weights_only": False},
        "opens a browser": {"_target_": "webbrowser.open", "url": f"file://{bait['sentinel']}"},
        "copies": {"_target_": "shutil.copyfile", "src": "/etc/hostname", "dst": str(bait["mark"])},
    }


def untouched(bait: dict) -> None:
    assert bait["sentinel"].read_text() == SENTINEL_TEXT
    assert not bait["mark"].exists()


def one_line_error(proc, *expected: str) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-2000:]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def crafted(source: Path, target: Path, path: str, node: dict) -> Path:
    """A copy of checkpoint `source` whose config holds `node` at the dotted `path`."""
    payload = torch.load(source, weights_only=True)
    where = payload["config"]
    *parents, last = path.split(".")
    for key in parents:
        where = where.setdefault(key, {})
    where[last] = node
    torch.save(payload, target)
    return target


# (where in the config the node goes, the key the refusal names)
DEPTHS = {
    "the attention": ("model.attention", "model.attention._target_"),
    "inside an allowed part": (
        "model.attention.options.inner",
        "model.attention.options.inner._target_",
    ),
    "in the corpus": ("data.corpus", "data.corpus._target_"),
}


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("kind", ["opens for writing", "unpickles", "opens a browser", "copies"])
def test_the_api_refuses_a_hostile_checkpoint(honest, bait, tmp_path, depth, kind):
    path, key = DEPTHS[depth]
    node = hostile_nodes(bait)[kind]
    ckpt = crafted(honest / "checkpoints" / "best.pt", tmp_path / "best.pt", path, node)
    with pytest.raises(NmtError) as refused:
        Translator.from_checkpoint(ckpt, device="cpu")
    message = str(refused.value)
    assert str(ckpt) in message and key in message and node["_target_"] in message
    assert "\n" not in message
    untouched(bait)


def test_hydras_other_keys_are_refused(honest, bait, tmp_path):
    node = {"_target_": "nmt.models.attention.NoAttention", "_args_": [str(bait["sentinel"])]}
    ckpt = crafted(honest / "checkpoints" / "best.pt", tmp_path / "b.pt", "model.attention", node)
    with pytest.raises(NmtError, match="model.attention._args_"):
        Translator.from_checkpoint(ckpt, device="cpu")
    node = {"_target_": "nmt.models.attention.NoAttention", "_partial_": True}
    ckpt = crafted(honest / "checkpoints" / "best.pt", tmp_path / "c.pt", "model.attention", node)
    with pytest.raises(NmtError, match="_partial_"):
        Translator.from_checkpoint(ckpt, device="cpu")


def test_nmt_translate_refuses_a_hostile_checkpoint(run_cli, honest, bait, tmp_path):
    node = hostile_nodes(bait)["opens for writing"]
    ckpt = crafted(honest / "checkpoints" / "best.pt", tmp_path / "best.pt", "model.decoder", node)
    proc = run_cli("translate", f"checkpoint={ckpt}", input="a b c\n", check=False)
    one_line_error(proc, str(ckpt), "model.decoder._target_", "builtins.open")
    assert proc.stdout == ""
    untouched(bait)


def test_nmt_evaluate_refuses_a_hostile_data_config(run_cli, honest, bait, tmp_path):
    node = hostile_nodes(bait)["unpickles"]
    ckpt = crafted(honest / "checkpoints" / "best.pt", tmp_path / "best.pt", "data.corpus", node)
    run_dir = tmp_path / "evaluation"
    proc = run_cli("evaluate", f"checkpoint={ckpt}", f"hydra.run.dir={run_dir}", check=False)
    one_line_error(proc, str(ckpt), "data.corpus._target_", "torch.load")
    assert not (run_dir / "results.json").exists()
    untouched(bait)


def test_init_from_a_hostile_checkpoint_writes_nothing(run_cli, honest, bait, tmp_path):
    node = hostile_nodes(bait)["copies"]
    ckpt = crafted(honest / "checkpoints" / "best.pt", tmp_path / "best.pt", "model.encoder", node)
    run_dir = tmp_path / "fine_tuned"
    proc = run_cli("train", *TINY, f"init_from={ckpt}", f"hydra.run.dir={run_dir}", check=False)
    one_line_error(proc, str(ckpt), "model.encoder._target_", "shutil.copyfile")
    assert not run_dir.exists()  # the hostile config was never written into a new run
    untouched(bait)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_resume_of_an_edited_run_directory_is_refused(run_cli, honest, bait, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(honest, run)
    saved = run / ".hydra" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    config["optim"]["optimizer"]["params"] = hostile_nodes(bait)["opens for writing"]
    saved.write_text(yaml.safe_dump(config))
    before = digests(run)
    proc = run_cli("train", f"resume={run}", "trainer.max_steps=20", check=False)
    one_line_error(proc, str(saved), "optim.optimizer.params._target_", "builtins.open")
    assert digests(run) == before
    untouched(bait)


def test_an_honest_checkpoint_loads_and_its_run_resumes(run_cli, honest, tmp_path):
    translator = Translator.from_checkpoint(honest / "checkpoints" / "best.pt", device="cpu")
    [[best]] = translator.translate(["a b c"])
    assert isinstance(best.text, str)
    run = tmp_path / "run"
    shutil.copytree(honest, run)
    run_cli("train", f"resume={run}", "trainer.max_steps=14")
    assert (run / "results.json").is_file()
