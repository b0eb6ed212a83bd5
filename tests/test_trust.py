"""nmt.trust: what a config read from a file may build."""

import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from nmt.errors import NmtError
from nmt.trust import allowed_modules, check_config, is_allowed, load_yaml, project_targets


def test_the_projects_own_targets_are_those_its_configs_name():
    targets = project_targets()
    assert "nmt.models.attention.BahdanauAttention" in targets
    assert "nmt.attention.BahdanauAttention" in targets  # a former home, as old runs name it
    assert {"torch.optim.Adam", "torch.optim.SGD", "nmt.data.bible.load_bible"} <= targets
    assert not any(t.startswith(("os.", "builtins.", "subprocess.")) for t in targets)


def test_an_honest_config_passes_and_nested_targets_are_refused():
    honest = {"model": {"attention": {"_target_": "nmt.models.attention.GlobalAttention"}}}
    check_config(honest, "x.pt")
    for path in ("a._target_", "model.attention.deep.deeper._target_"):
        cfg = OmegaConf.create()
        OmegaConf.update(cfg, path, "posix.system")
        with pytest.raises(NmtError, match=f"x.pt: key '{path}' names 'posix.system'"):
            check_config(cfg, "x.pt")
    in_a_list = {
        "model": {
            "layers": [{"_target_": "nmt.models.encoder.RNNEncoder"}, {"_target_": "io.open"}]
        }
    }
    with pytest.raises(NmtError, match="model.layers.1._target_"):
        check_config(in_a_list, "x.pt")


@pytest.mark.parametrize("key", ["_args_", "_partial_", "_call_", "_recursive_", "_convert_"])
def test_hydras_other_keys_are_refused(key):
    cfg = {"m": {"_target_": "nmt.models.attention.NoAttention", key: True}}
    with pytest.raises(NmtError, match=f"key 'm.{key}'"):
        check_config(cfg, "run/.hydra/config.yaml")


def test_interpolations_are_resolved_before_the_check(monkeypatch):
    monkeypatch.setenv("NMT_TEST_TARGET", "os.system")
    with pytest.raises(NmtError, match="names 'os.system'"):
        check_config({"m": {"_target_": "${oc.env:NMT_TEST_TARGET}"}}, "f")
    with pytest.raises(NmtError, match="f: its config does not resolve"):
        check_config({"m": "${oc.env:NMT_NO_SUCH_VARIABLE}"}, "f")


def test_an_allowed_module_allows_what_it_defines_and_nothing_it_imports(tmp_path, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(
        textwrap.dedent(
            """
            import os
            from os import system
            class Attention:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_plugin", raising=False)
    assert is_allowed("my_plugin.Attention", ["my_plugin"])
    assert is_allowed("my_plugin.Attention", ["my_plugin.Attention"])
    assert not is_allowed("my_plugin.Attention", [])
    assert not is_allowed("my_plugin.os.system", ["my_plugin"])
    assert not is_allowed("my_plugin.system", ["my_plugin"])
    assert not is_allowed("my_plugin_other.Attention", ["my_plugin"])
    assert not is_allowed("my_plugin.Missing", ["my_plugin"])


def test_allow_targets_takes_dotted_names_only():
    assert allowed_modules(None) == () and allowed_modules("a.b") == ("a.b",)
    assert allowed_modules(["a", "b_c.d"]) == ("a", "b_c.d")
    for bad in (["../x"], ["a b"], [""], [3]):
        with pytest.raises(NmtError, match="allow_targets"):
            allowed_modules(bad)


def test_load_yaml_names_a_file_that_is_not_a_config(tmp_path):
    for text, message in (
        ("a: [1,\n", "not a readable YAML config"),
        ("- 1\n", "not a YAML mapping"),
    ):
        path = tmp_path / "config.yaml"
        path.write_text(text)
        with pytest.raises(NmtError, match=message) as refused:
            load_yaml(path)
        assert str(path) in str(refused.value)
