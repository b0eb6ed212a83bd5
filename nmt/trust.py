"""What a config read from a file may build.

A checkpoint, a run directory's saved config or a reproduction's record is data, possibly from
someone else. Hydra's `instantiate` builds whatever `_target_` a config names, with the
arguments it gives, so before anything is built from such a config every `_target_`, at any
depth, must be one that the project's own config files put there (its encoders, decoders,
attention variants, corpora and optimizers), or lie under a module the user allowed by name
(`allow_targets=[MODULE, ...]`, for a plug-in variant). Hydra's other special keys (`_args_`,
`_partial_`, `_call_`, `_recursive_`, `_convert_`) are never needed by a saved config and are
refused. Configs given on the command line are the user's own and are not checked here.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt.config import CONFIG_DIR
from nmt.errors import NmtError

# Where the model parts lived before nmt/models/: the configs saved in older run directories
# and checkpoints name them so, and they still build (nmt.models.build moves them).
FORMER_HOMES = {
    "nmt.attention.": "nmt.models.attention.",
    "nmt.encoder.": "nmt.models.encoder.",
    "nmt.decoder.": "nmt.models.decoder.",
    "nmt.models.hard_attention.": "nmt.models.attention.",
    "nmt.models.stateful_attention.": "nmt.models.attention.",
}

DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
SPECIAL_KEY = re.compile(r"_.*_")  # Hydra's `_target_`, `_args_`, `_partial_`, ...


@functools.cache
def project_targets() -> frozenset[str]:
    """Every `_target_` the project's config files name, and the former names of the parts that
    moved: the targets a config read from a file may build without the user's word."""
    found: set[str] = set()
    for path in sorted(Path(CONFIG_DIR).rglob("*.yaml")):
        found.update(_targets_in(OmegaConf.to_container(OmegaConf.load(path))))
    for old, new in FORMER_HOMES.items():
        found.update(old + t[len(new) :] for t in list(found) if t.startswith(new))
    return frozenset(found)


def _targets_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                yield value
            else:
                yield from _targets_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets_in(value)


def allowed_modules(given: Any) -> tuple[str, ...]:
    """`allow_targets` (a list of module or class names, or one name) checked: dotted Python
    names only."""
    if given is None:
        return ()
    names = [given] if isinstance(given, str) else list(given)
    for name in names:
        if not isinstance(name, str) or not DOTTED.fullmatch(name):
            raise NmtError(
                f"allow_targets: {name!r} is not a module or class name (e.g. my_attention)"
            )
    return tuple(names)


def is_allowed(target: str, allow: Sequence[str] = ()) -> bool:
    """Whether a config read from a file may build `target`: one of the project's own, or a
    class or function defined under an allowed name and named by where it is defined (so that
    `my_attention.os.system`, reached through the allowed module's imports, is not)."""
    if target in project_targets():
        return True
    if not any(target == name or target.startswith(name + ".") for name in allow):
        return False
    try:
        found = get_object(target)
    except Exception:  # noqa: BLE001 - whatever fails to import is not allowed
        return False
    defined = inspect.isclass(found) or inspect.isfunction(found)
    return defined and f"{found.__module__}.{found.__qualname__}" == target


def check_config(cfg: Any, source: str, allow: Iterable[str] = ()) -> None:
    """Refuse a config read from `source` (a file's name) that would build anything outside the
    project's own classes or the allowed modules, before anything is built: one line naming the
    file, the key and the target. `cfg` is a dict or an OmegaConf node; interpolations are
    resolved first, as building them would."""
    allow = tuple(allow)
    for key, target in _special_keys(_resolved(cfg, source), ""):
        if not key.endswith("._target_") and key != "_target_":
            raise NmtError(
                f"{source}: key '{key}': Hydra's '{key.rsplit('.', 1)[-1]}' is refused in a "
                "config read from a file"
            )
        if not isinstance(target, str) or not is_allowed(target, allow):
            raise NmtError(
                f"{source}: key '{key}' names {target!r}, which is not one of nmt's own "
                "classes; refused (if you trust this file and that code, give "
                "allow_targets=[ITS_MODULE])"
            )


def _resolved(cfg: Any, source: str) -> Any:
    if not isinstance(cfg, DictConfig | ListConfig):
        try:
            cfg = OmegaConf.create(cfg)
        except (OmegaConfBaseException, ValueError) as err:
            raise NmtError(f"{source}: its config is not a config ({err})") from None
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        raise NmtError(f"{source}: its config does not resolve ({first})") from None


def _special_keys(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every key of the form `_name_`, at any depth."""
    if not isinstance(node, dict | list):
        return
    for key, value in node.items() if isinstance(node, dict) else enumerate(node):
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(key, str) and SPECIAL_KEY.fullmatch(key):
            yield path, value
        if isinstance(value, dict | list):
            yield from _special_keys(value, path)


def load_yaml(path: Path, allow: Iterable[str] = ()) -> DictConfig:
    """A YAML config file read from disk and checked (`check_config`); a file that is not a
    YAML mapping is one error naming it."""
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NmtError(f"{path}: not a readable YAML config ({first})") from None
    if not isinstance(cfg, DictConfig):
        raise NmtError(f"{path}: not a YAML mapping")
    check_config(cfg, str(path), allow)
    return cfg
