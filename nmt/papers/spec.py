"""The schema of a paper file (configs/paper/NAME.yaml): its rows, claims, report layout and
scales as typed OmegaConf nodes. `paper_spec` checks a composed paper against it, so that a
mistyped key, a value of the wrong type, an unknown claim kind or a claim naming a row the
paper does not have stops `nmt-reproduce` with one line, before any job runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt.errors import NmtError

# Each claim kind and the keys its test needs (nmt.papers.claims.CLAIM_TESTS runs them).
CLAIM_KINDS: dict[str, tuple[str, ...]] = {
    "better": ("a", "b"),
    "length_gap": ("a", "b", "short_below", "long_from"),
    "monotonic": ("min_rho",),
    "correlation": ("max_r",),
    "sharper": ("a", "b"),
    "unk_gain": ("a",),
}


@dataclasses.dataclass
class ClaimTest:
    """How a claim is tested: a kind of CLAIM_KINDS and the keys it needs."""

    kind: str
    a: str | None = None  # the row that should win
    b: str | None = None  # the row it is compared with
    short_below: int | None = None  # length_gap: sources of fewer words
    long_from: int | None = None  # length_gap: sources of at least this many words
    min_rho: float | None = None  # monotonic: the median Spearman rho that holds
    max_r: float | None = None  # correlation: the Pearson r that holds (at most)


@dataclasses.dataclass
class Claim:
    """A claim of the paper, its figure and its test."""

    id: int
    claim: str
    paper: str  # the paper's own figure
    test: ClaimTest


@dataclasses.dataclass
class PaperRow:
    """A row of the paper's table: one experiment, trained once per seed."""

    id: str
    label: str
    experiment: str  # configs/experiment/NAME.yaml
    published: dict[str, float] = dataclasses.field(default_factory=dict)
    overrides: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # by scale
    seeds: int = 1  # at least this many seeds, whatever `seeds=` says
    steps_factor: float = 1.0  # times the scale's max_steps


@dataclasses.dataclass
class TableLayout:
    """The results table's title and its comparisons."""

    title: str
    against: str | None = None  # every row's gain over this row, with p-values
    progressive: bool = False  # each row's gain over the row above


@dataclasses.dataclass
class LengthLayout:
    """The BLEU-by-length figure's title and rows."""

    title: str
    rows: list[str]


@dataclasses.dataclass
class CurvesLayout:
    """The learning curves' title."""

    title: str


@dataclasses.dataclass
class HeatmapsLayout:
    """The heatmaps: title, rows, and how many verses of how many words."""

    title: str
    rows: list[str]
    count: int
    min_words: int
    max_words: int


@dataclasses.dataclass
class ReportLayout:
    """The report's sections in the paper's layout."""

    table: TableLayout
    length: LengthLayout
    curves: CurvesLayout
    heatmaps: HeatmapsLayout


@dataclasses.dataclass
class Scale:
    """A scale's budget, its overrides of every row, and its changes from the paper."""

    max_steps: int | None
    overrides: list[str]
    changes: list[str]


@dataclasses.dataclass
class Paper:
    """A paper file: its rows, report layout, scales and claims."""

    name: str
    title: str
    published_setup: str
    published_columns: dict[str, str]
    rows: list[PaperRow]
    report: ReportLayout
    scales: dict[str, Scale]
    alpha: float
    claims: list[Claim]
    floor_margin: float | None = None  # nmt.papers.claims.FLOOR_MARGIN when null


def paper_spec(node: Any) -> DictConfig:
    """The composed `paper` node checked against `Paper`: a typed node (the same attribute
    access) or one NmtError naming the paper file and the key."""
    where = f"paper {OmegaConf.select(node, 'name', default='?')} (configs/paper)"
    for key, schema in (("rows", PaperRow), ("claims", Claim)):  # each item, to name its index
        for n, item in enumerate(OmegaConf.select(node, key, default=None) or []):
            _typed(schema, item, where, f"{key}[{n}].")
    spec = _typed(Paper, node, where, "")
    ids = [row.id for row in spec.rows]
    if len(set(ids)) != len(ids):
        raise NmtError(f"{where}: rows: a row id appears twice")
    for n, claim in enumerate(spec.claims):
        test = claim.test
        if test.kind not in CLAIM_KINDS:
            kinds = ", ".join(CLAIM_KINDS)
            raise NmtError(f"{where}: claims[{n}].test.kind: '{test.kind}' is not one of {kinds}")
        for key in CLAIM_KINDS[test.kind]:
            if test[key] is None:
                raise NmtError(f"{where}: claims[{n}].test: a {test.kind} test needs '{key}'")
        _rows_exist(where, f"claims[{n}].test", [test.a, test.b], ids)
    layout = spec.report
    _rows_exist(where, "report.table.against", [layout.table.against], ids)
    _rows_exist(where, "report.length.rows", layout.length.rows, ids)
    _rows_exist(where, "report.heatmaps.rows", layout.heatmaps.rows, ids)
    return spec


def _typed(schema: type, node: Any, where: str, prefix: str) -> DictConfig:
    """`node` merged onto `schema`'s structured config; its errors as one NmtError naming the
    key below `prefix`."""
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0]
        raise NmtError(f"{where}: key '{prefix}{key}': {reason}") from None


def _rows_exist(where: str, key: str, named: list[str | None], ids: list[str]) -> None:
    for row in named:
        if row is not None and row not in ids:
            raise NmtError(f"{where}: {key}: '{row}' is not one of its rows")
