"""markdown.py: a body nested deeper than markdown-it's limit is a bad item naming its line, not text dropped
silently from the HTML and the text part; the limit is the parts' own, and the cheap pre-check misses none."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import write_item
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import markdown as nesting
from digest.items import TOO_DEEP, BadItem, parse_item
from digest.plaintext import markdown_text
from digest.render import markdown_html

TZ = ZoneInfo("Europe/Zurich")
HEAD = "---\ntitle: T\ndate: 2021-03-10\ncategory: News\nsummary: S\n---\n"  # 6 lines: the body is on line 7
WHY = f"body: {TOO_DEEP}"


def quotes(depth: int) -> str:
    """Quotes inside each other, one a line, each with its words (q1 ... q<depth>), then a paragraph."""
    return "".join(f"{'> ' * n}q{n}\n{'> ' * n}\n" for n in range(1, depth + 1)) + "\nafter\n"


def lists(depth: int) -> str:
    """Lists inside each other, one item a line (l1 ... l<depth>), then an outer item and a paragraph."""
    return "".join(f"{'  ' * (n - 1)}- l{n}\n" for n in range(1, depth + 1)) + "- outer\n\nafter\n"


def words(depth: int, prefix: str) -> list[str]:
    return [f"{prefix}{n}" for n in range(1, depth + 1)] + ["after"]


def parse(body: str, newline: str = "\n") -> object:
    return parse_item(Path("deep.md"), (HEAD + body).replace("\n", newline).encode(), TZ)


def problems(body: str, newline: str = "\n") -> tuple[tuple[int, str], ...]:
    with pytest.raises(BadItem) as info:
        parse(body, newline)
    return info.value.problems


def test_markdown_drops_what_is_nested_as_deep_as_the_limit_in_both_parts() -> None:
    # Why the check exists, and that the parts' limit is the one checked: at it, both parts lose text.
    assert nesting.LIMIT == 20
    for body, lost in ((quotes(20), ["q20"]), (lists(10), ["l10", "outer", "after"])):
        for part in (markdown_html(body), markdown_text(body)):
            assert [w for w in lost if w in part] == []
            assert "q19" in part or "l9" in part


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_quotes_nested_20_deep_are_a_bad_item_at_the_line_of_the_20th(newline: str) -> None:
    # q<n> is on line 7 + 2(n - 1): q20 on line 45.
    assert problems(quotes(20), newline) == ((45, WHY),)
    assert problems(quotes(25), newline) == ((45, WHY),)


def test_lists_nested_10_deep_are_a_bad_item_at_the_line_of_the_10th() -> None:
    assert problems(lists(10)) == ((16, WHY),)  # l<n> on line 6 + n
    assert problems("- " * 10 + "on one line\n") == ((7, WHY),)
    # A list counts two levels: one inside 18 quotes is too deep, inside 17 it is not.
    assert problems("intro\n\n" + "> " * 18 + "- x\n") == ((9, WHY),)
    parse("intro\n\n" + "> " * 17 + "- x\n")


def test_the_line_counts_from_the_file_whatever_blank_lines_start_the_body() -> None:
    body = "\n\n\nfirst words\n\n" + "> " * 20 + "deep\n"
    assert problems(body) == ((12, WHY),)  # 6 of front matter, 3 blank, words, blank, then the quote
    assert problems(body, "\r\n") == ((12, WHY),)
    assert problems("one\rtwo\n" + "> " * 20 + "deep\n") == ((9, WHY),)  # a lone CR ends a line too
    raw = HEAD.replace("\ndate:", "\rdate:") + "> " * 20 + "deep\n"  # as it does in YAML: line 7 still
    with pytest.raises(BadItem) as info:
        parse_item(Path("deep.md"), raw.encode(), TZ)
    assert info.value.problems == ((7, WHY),)


def test_the_problem_says_how_deep_is_too_deep_and_what_to_do() -> None:
    assert WHY == (
        "body: quotes and lists are nested more than 19 levels deep here (a quote counts one level, a list "
        "two): markdown would drop the text from here on (in a list, to the end of the body); flatten it"
    )


def test_a_deep_body_is_said_with_the_files_other_problems() -> None:
    raw = "---\ntitle: T\ndate: soon\ncategory: News\nsummary: S\n---\n" + "> " * 20 + "deep\n"
    with pytest.raises(BadItem) as info:
        parse_item(Path("deep.md"), raw.encode(), TZ)
    assert [line for line, _ in info.value.problems] == [3, 7]
    assert info.value.problems[1] == (7, WHY)


def test_just_under_the_limit_the_item_is_good_and_both_parts_keep_every_word() -> None:
    for body, kept in ((quotes(19), words(19, "q")), (lists(9), [*words(9, "l"), "outer"])):
        item = parse(body)
        assert item.body == body.strip()  # type: ignore[attr-defined]
        html, text = markdown_html(body), markdown_text(body)
        assert [w for w in kept if w not in html or w not in text] == []


def test_deep_inline_nesting_drops_nothing_and_is_accepted() -> None:
    # markdown-it keeps every character of deep emphasis, and leaves 21 or more nested brackets as written.
    for body in ("*" * 25 + "strong" + "*" * 25, "[" * 25 + "label" + "]" * 25 + "(https://a.example/) tail"):
        parse(body)
        assert "strong" in markdown_text(body) or "label" in markdown_text(body)
        assert "strong" in markdown_html(body) or "label" in markdown_html(body)


def test_a_line_of_many_markers_that_nests_little_is_good() -> None:
    # The pre-check lets these through to the parse, which finds them shallow.
    for body in ("- " + "-" * 30 + "\n", "1. 2. 3. 4. 5. 6. 7. 8. 9. text\n", "\t" * 6 + "code\n"):
        assert nesting.could_be_deep(body)
        parse(body)
    assert nesting.too_deep("\t\t\t\t\t- x") is None  # indented code, 20 columns deep


def test_a_lone_cr_starts_a_line_for_the_pre_check_as_for_markdown_it() -> None:
    assert nesting.too_deep("x\r" + "> " * 20 + "deep") == 1
    assert nesting.too_deep("x\r\n\r\n" + "> " * 20 + "deep") == 2


def test_a_tab_counts_as_up_to_four_columns_of_nesting() -> None:
    tabbed = "".join("\t" * (n - 1) + f"- l{n}\n" for n in range(1, 11))  # 10 lists, one more tab each
    assert nesting.too_deep(tabbed) == 9


def test_both_parts_parse_alike_so_one_probe_tells_for_both() -> None:
    # "[a]: /u" (a relative address) is a link reference definition to both parts: they nest what follows
    # alike, and both cut where the probe says.
    text = "[a]: /u\n2) 1. 2) deep\n\n- - > deeper"
    assert nesting.too_deep(text, 4) == 1
    assert "deep" not in _render(text, 4)[0]


def test_a_build_with_a_deep_item_fails_naming_its_file_and_line(workspace: Path, run: object) -> None:
    write_item(workspace / "items", "deep.md", HEAD + lists(12))
    result = run("build", "--month", "2021-03")  # type: ignore[operator]
    assert result.exit_code == 1
    assert result.stderr == f"Error: items/deep.md:16: {WHY}\n"


# The pre-check and the probe against the truth (the parts' own parsers, with and without the limit), on
# random Markdown made of quote and list markers, with small limits so that nesting is reached often.
MARKERS = ["> ", ">", "- ", "* ", "+ ", "1. ", "2) ", "10. ", " ", "  ", "    ", "\t"]
PIECES = [*MARKERS, "x", "```", "# h", "---"]
REFERENCES = ["[a]: /u", "[a]: javascript:x"]  # link reference definitions, whatever the address


def _render(text: str, limit: int) -> tuple[str, object]:
    md = nesting.parser(max_nesting=limit)
    env: dict[str, object] = {}
    return md.render(text, env), sorted(env.get("references", {}).items())  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.integers(2, 6),
    lines=st.lists(st.lists(st.sampled_from(PIECES + REFERENCES), max_size=8).map("".join), max_size=7),
    newline=st.sampled_from(["\n", "\r\n", "\r", "\n\n"]),
)
def test_no_body_that_a_part_would_cut_gets_through(limit: int, lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    cut = _render(text, limit) != _render(text, 300)
    found = nesting.too_deep(text, limit)
    if cut:
        assert nesting.could_be_deep(text, limit)
        assert found is not None
    elif found is not None:  # found, unseen: only a definition of a label defined already is dropped so
        assert "[a]:" in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[found]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    limit=st.integers(2, 6),
    lines=st.lists(st.lists(st.sampled_from(PIECES), max_size=8).map("".join), max_size=7),
)
def test_the_line_found_is_where_the_cut_starts(limit: int, lines: list[str]) -> None:
    text = "\n".join(lines)
    found = nesting.too_deep(text, limit)
    assert (found is not None) == (_render(text, limit) != _render(text, 300))
    if found is not None:  # the text before that line is parsed alike with the limit and without it
        head = "\n".join(text.split("\n")[:found])
        assert nesting.too_deep(head, limit) is None
