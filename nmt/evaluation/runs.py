"""Finished runs read from their directories (results.json, metrics.jsonl, the saved Hydra
config), and grouped into variants: runs whose configs differ only in the seed, labelled by the
overrides that tell them apart."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from nmt import files as jsonfile
from nmt.errors import NmtError

log = logging.getLogger(__name__)

RESULTS = "results.json"
# results.json's numbers that reports do arithmetic on
SCORES = (
    "bleu",
    "bleu_multi_ref",
    "bleu_before_unk_replace",
    "chrf",
    "test_ppl",
    "attention_entropy",
    "params",
    "train_time_s",
    "best_step",
    "steps",
    "epochs",
    "nonfinite_steps",
)
# Config keys that do not make a different variant: the seed, and where a run lives.
NOT_VARIANT = ("seed", "resume", "paths")


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished training run, read from its directory."""

    path: Path
    config: dict
    overrides: tuple[str, ...]
    results: dict
    metrics: list[dict]

    @property
    def seed(self) -> object:
        return self.config.get("seed")

    def lines(self, name: str) -> list[str]:
        """The lines of a text file of the run, right-stripped as sacrebleu's CLI reads them."""
        path = self.path / name
        if not path.is_file():
            raise NmtError(f"{path}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise NmtError(f"{path}: not UTF-8 text (byte {err.start})") from None
        return [line.rstrip() for line in text.splitlines()]

    def final_dev_ppl(self) -> float | None:
        values = [r["dev_ppl"] for r in self.metrics if r.get("dev_ppl") is not None]
        return values[-1] if values else None


@dataclasses.dataclass(frozen=True)
class Variant:
    """Runs with equal configs up to the seed, under a label naming how they differ."""

    label: str
    runs: list[Run]

    def run_label(self, run: Run) -> str:
        return self.label if len(self.runs) == 1 else f"{self.label} seed={run.seed}"


def _natural_key(path: Path) -> list:
    """Sort multirun jobs 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_run_dirs(entries: Sequence[str]) -> list[Path]:
    """The run directories named by `entries`, each a run or a multirun directory."""
    found: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if not path.is_dir():
            raise NmtError(f"runs: {path}: no such directory")
        if (path / RESULTS).is_file():
            found.append(path)
            continue
        if (path / ".hydra").is_dir():
            raise NmtError(f"runs: {path}: no {RESULTS} (the run has not finished?)")
        for job in sorted(path.rglob(".hydra"), key=_natural_key):
            if not (job.parent / RESULTS).is_file():
                log.warning("skipping %s: no %s", job.parent, RESULTS)
        nested = sorted((p.parent for p in path.rglob(RESULTS)), key=_natural_key)
        if not nested:
            raise NmtError(f"runs: no {RESULTS} under {path}")
        found += nested
    return list(dict.fromkeys(p.resolve() for p in found))


def _read_json(path: Path) -> object:
    """The file's JSON, a NaN or infinity in it (from older runs) read as null."""
    try:
        return jsonfile.finite(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise NmtError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise NmtError(f"{path}: not valid JSON ({err})") from None


def _read_yaml(path: Path, kind: type) -> object:
    """The file's YAML as plain data of `kind` (dict or list)."""
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NmtError(f"{path}: not readable YAML ({reason})") from None
    if not isinstance(loaded, kind):
        raise NmtError(f"{path}: expected a YAML {'mapping' if kind is dict else 'list'}")
    return loaded


def check_scores(path: Path, results: dict) -> None:
    """Refuse a score that is not a number (or null): the report would do arithmetic on it."""
    for key, value in results.items():
        if key in SCORES and not (value is None or _number(value)):
            raise NmtError(f"{path}: {key!r} must be a number, not {value!r}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_run(path: Path) -> Run:
    """Read results.json, metrics.jsonl and the saved Hydra config of a run directory."""
    results = _read_json(path / RESULTS)
    if not isinstance(results, dict):
        raise NmtError(f"{path / RESULTS}: expected a JSON object")
    check_scores(path / RESULTS, results)
    config_file = path / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise NmtError(f"{path}: no .hydra/config.yaml (not a run directory of nmt-train?)")
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = _read_yaml(overrides_file, list) if overrides_file.is_file() else []
    return Run(
        path=path,
        config=_read_yaml(config_file, dict),
        overrides=tuple(str(o) for o in overrides),
        results=results,
        metrics=jsonfile.read_jsonl(path / "metrics.jsonl"),
    )


def _override_key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def _labelling_overrides(run: Run) -> list[str]:
    """The run's command-line overrides that may tell variants apart."""
    return [
        o
        for o in run.overrides
        if _override_key(o).split(".")[0] not in NOT_VARIANT
        and not _override_key(o).startswith("hydra")
    ]


def _short_names(paths: list[Path]) -> list[str]:
    """The shortest distinct path tails (at least two parts for numbered multirun jobs)."""
    start = 2 if any(p.name.isdigit() for p in paths) else 1
    for k in range(start, max(len(p.parts) for p in paths) + 1):
        names = ["/".join(p.parts[-k:]) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def _labels(groups: list[list[Run]]) -> list[str]:
    """Each group's overrides that not every group shares; else its directory name."""
    shared = [set.intersection(*(set(_labelling_overrides(r)) for r in g)) for g in groups]
    common = set.intersection(*shared) if len(groups) > 1 else set()
    labels = [
        " ".join(o for o in _labelling_overrides(g[0]) if o in s - common)
        for g, s in zip(groups, shared, strict=True)
    ]
    fallback = _short_names([g[0].path for g in groups])
    labels = [
        label if label and labels.count(label) == 1 else name
        for label, name in zip(labels, fallback, strict=True)
    ]
    # A directory name could still equal another group's override label.
    return [
        f"{label} #{i + 1}" if labels.count(label) > 1 else label for i, label in enumerate(labels)
    ]


def group_runs(runs: list[Run]) -> list[Variant]:
    """Variants in order of first appearance: runs whose configs are equal up to the seed."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        config = {k: v for k, v in run.config.items() if k not in NOT_VARIANT}
        groups.setdefault(json.dumps(config, sort_keys=True, default=str), []).append(run)
    members = list(groups.values())
    return [Variant(label, g) for label, g in zip(_labels(members), members, strict=True)]


def pick_baseline(variants: list[Variant], name: str | None) -> Variant:
    """The variant called `name` (its whole label, one of its overrides or an override's value);
    the first variant when `name` is None."""
    if name is None:
        return variants[0]
    exact = [v for v in variants if v.label == name]
    parts = [v for v in variants if any(name in (o, o.partition("=")[2]) for o in v.label.split())]
    matches = exact or parts
    if len(matches) != 1:
        problem = "matches several variants" if matches else "no such variant"
        labels = "; ".join(v.label for v in variants)
        raise NmtError(
            f"baseline={name}: {problem} (variants: {labels}; give a whole label quoted, "
            """e.g. 'baseline="model/attention=none"', or one override value, e.g. baseline=none)"""
        )
    return matches[0]
