"""The paper report's results table in its two layouts: progressive (each row's gain over the
one above) and against one row (each row's gain over it, with a p-value per seed)."""

from omegaconf import OmegaConf

from nmt.evaluation.runs import Run
from nmt.papers.claims import Row
from nmt.papers.report import results_table

REFS = [f"das ist satz nummer {i} hier" for i in range(30)]


def row(tmp_path, rid: str, published: dict, bleus: list[float], hyps: list[str]) -> Row:
    runs = []
    for seed, score in enumerate(bleus, start=1):
        path = tmp_path / rid / f"seed{seed}"
        path.mkdir(parents=True)
        for name, lines in (("test.src", REFS), ("test.hyp", hyps), ("test.ref", REFS)):
            (path / name).write_text("".join(x + "\n" for x in lines))
        runs.append(Run(path, {"seed": seed}, (), {"bleu": score, "test_ppl": 9.0}, []))
    return Row(OmegaConf.create({"id": rid, "label": rid, "published": published}), runs)


def paper(table: dict):
    return OmegaConf.create({"published_columns": {"bleu": "BLEU"}, "report": {"table": table}})


def test_a_progressive_table_gives_each_rows_gain_over_the_row_above(tmp_path):
    rows = {
        "base": row(tmp_path, "base", {"bleu": 11.3}, [4.0, 5.0], REFS),
        "next": row(tmp_path, "next", {"bleu": 12.6}, [6.0, 8.0], REFS),
    }
    table = results_table(paper({"title": "T", "progressive": True}), rows, {}, 10)
    gain, paper_gain = table.header.index("gain"), table.header.index("paper: gain")
    assert [line[gain] for line in table.rows] == ["–", "+2.50"]
    assert [line[paper_gain] for line in table.rows] == ["–", "+1.30"]


def test_a_table_against_one_row_tests_every_other_row_per_seed(tmp_path):
    worse = [" ".join(r.split()[:2]) for r in REFS]
    rows = {
        "dot": row(tmp_path, "dot", {"bleu": 18.6}, [10.0, 11.0], worse),
        "local": row(tmp_path, "local", {"bleu": 19.0}, [12.0, 13.0], REFS),
    }
    table = results_table(paper({"title": "T", "against": "dot"}), rows, {}, 50)
    column = table.header.index("vs dot: gain (p per seed)")
    assert table.rows[0][column] == "–"
    gain, p_values = table.rows[1][column].split(" (")
    assert gain.startswith("+") and len(p_values.rstrip(")").split(", ")) == 2
