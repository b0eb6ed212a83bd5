"""nmt.evaluation.render: Markdown that shows what runs named and runs none of it."""

import pytest

from nmt.evaluation.render import Table, escape_markdown, markdown_table, to_markdown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
        ("<!-- x --> <?php ?> </b>", "&lt;!-- x --> &lt;?php ?> &lt;/b>"),
        ("<https://example.org>", "&lt;https://example.org>"),
        (
            "[a](javascript:x) ![i](http://e/i.png)",
            "\\[a\\](javascript:x) !\\[i\\](http://e/i.png)",
        ),
        ("\\`<b>`", "\\`&lt;b>`"),  # an escaped backtick opens no code span
        ("`borrow=[x]` and `<b>`", "`borrow=[x]` and `<b>`"),  # code spans show as they are
        ("``a`b`` <i>", "``a`b`` &lt;i>"),
        ("a`b <i>", "a`b &lt;i>"),
    ],
)
def test_escape_markdown_leaves_no_html_or_link(text, shown):
    assert escape_markdown(text) == shown


def test_the_reports_own_markdown_is_unchanged():
    for text in ("p < 0.05, <= 30 words, English -> French", "**held**", "a_b_c", "1 | 2"):
        assert escape_markdown(text) == text


def test_a_table_cell_stays_on_its_line_and_in_its_column():
    table = Table(["name", "BLEU"], [["a\n| b <i>", "1.0"]])
    assert markdown_table(table).splitlines()[2] == "| a \\| b &lt;i> | 1.0 |"
    assert "&lt;h1>" in to_markdown("<h1>", [("<h2>", ["<p>"])])
