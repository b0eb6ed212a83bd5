"""The paper files' schema (nmt/papers/spec.py): every paper file holds to it, and a mistyped
key, an unknown claim kind or a claim naming no row is one line naming the key."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nmt.config import CONFIG_DIR
from nmt.errors import NmtError
from nmt.papers.claims import CLAIM_TESTS
from nmt.papers.spec import CLAIM_KINDS, paper_spec

PAPERS = sorted(p.stem for p in (Path(CONFIG_DIR) / "paper").glob("*.yaml"))


def paper_file(name: str):
    return OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{name}.yaml")


@pytest.mark.parametrize("name", PAPERS)
def test_every_paper_file_holds_to_the_schema(name):
    spec = paper_spec(paper_file(name))
    assert spec.name == name and spec.rows and spec.claims


def test_every_claim_kind_has_its_test():
    assert set(CLAIM_KINDS) == set(CLAIM_TESTS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p.rows[0].__setattr__("experimnt", "x"), "key 'rows[0].experimnt'"),
        (lambda p: p.__setattr__("alpha", "often"), "key 'alpha'"),
        (lambda p: p.claims[0].test.__setattr__("kind", "vibes"), "'vibes' is not one of better"),
        (
            lambda p: p.claims[0].test.__setattr__("a", "nowhere"),
            "'nowhere' is not one of its rows",
        ),
        (lambda p: p.claims[0].test.__setattr__("b", None), "a better test needs 'b'"),
        (lambda p: p.report.table.__setattr__("against", "gone"), "report.table.against: 'gone'"),
    ],
)
def test_a_bad_paper_file_is_one_line_naming_the_key(change, expected):
    paper = paper_file("bahdanau14")
    change(paper)
    with pytest.raises(NmtError, match="paper bahdanau14") as err:
        paper_spec(paper)
    assert expected in str(err.value) and "\n" not in str(err.value)
