"""items.py: parsing one file (every kind of bad file reported as path:line), drafts, and `digest new`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, write_item

from digest.config import load_config
from digest.errors import ItemError
from digest.items import BadItem, parse_item
from digest.newitem import new_item
from digest.scan import scan

TZ = ZoneInfo("Europe/Zurich")

GOOD = """
---
title: A good item
date: 2021-03-10
category: News
summary: Something happened.
---
"""


def problems(folder: Path) -> list[str]:
    with pytest.raises(ItemError) as info:
        scan(folder, tz=TZ, relative_to=folder.parent)
    return info.value.problems


def test_sample_items_load() -> None:
    found = scan(REPO / "items", tz=TZ)
    assert len(found.items) == 10
    by_title = {i.title: i for i in found.items}
    marta = by_title["Marta Lozano Molano, Founding Member of Wazo Cooperative"]
    assert marta.category == "Spotlight Interviews with Co-operators"
    assert marta.when == datetime(2021, 3, 24, tzinfo=TZ)
    assert marta.all_day
    assert marta.url == "https://www.ilo.org/global/topics/cooperatives/news/WCMS_776503/lang--en/index.htm"
    assert sum(1 for i in found.items if i.url) == 5


def test_optional_fields_and_body(tmp_path: Path) -> None:
    write_item(
        tmp_path / "items",
        "full.md",
        """
        ---
        title: Full
        date: 2021-03-10T23:30:00-05:00
        category: News
        summary: |
          Two lines
          of summary.
        url: https://example.org/a?b=1
        image: https://example.org/a.png
        image_alt: A picture
        author: Ana
        tags: [one, two]
        ---
        Body *text*.
        """,
    )
    (item,) = scan(tmp_path / "items", tz=TZ).items
    assert item.when == datetime(2021, 3, 11, 5, 30, tzinfo=TZ)
    assert item.when.isoformat() == "2021-03-11T05:30:00+01:00"  # converted into the configured zone
    assert not item.all_day
    assert item.summary == "Two lines of summary."
    assert item.tags == ("one", "two")
    assert item.body == "Body *text*."
    assert (item.image, item.image_alt, item.author) == ("https://example.org/a.png", "A picture", "Ana")


def test_optional_fields_not_given_are_left_empty() -> None:
    item = parse_item(Path("x.md"), GOOD.lstrip().encode(), TZ)
    assert (item.url, item.image, item.image_alt, item.author, item.publish_after, item.lang) == (None,) * 6
    assert (item.tags, item.draft, item.pinned, item.body) == ((), False, False, "")


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        (
            "title: T\ndate: 2021-03-01\ncategory: News\n",
            "items/bad.md:1: summary: required field is missing or empty",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: ''\nsummary: S\n",
            "items/bad.md:4: category: required field is missing or empty",
        ),
        (
            "title: T\ndate: 31/03/2021\ncategory: News\nsummary: S\n",
            "items/bad.md:3: date: cannot read '31/03/2021' as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+HH:MM",
        ),
        (
            "title: T\ndate: 2021-03-01 10:00\ncategory: News\nsummary: S\n",
            "items/bad.md:3: date: the time 2021-03-01 10:00 has no UTC offset: "
            "add one (e.g. +01:00 or Z) or give a plain date",
        ),
        (
            "title: 1984\ndate: 2021-03-01\ncategory: News\nsummary: S\n",
            "items/bad.md:2: title: expected text, got a number (put it in quotes)",
        ),
        (
            "title: T\ndate: 2021-03-01\ncatgory: News\nsummary: S\n",
            "items/bad.md:1: category: required field is missing or empty\n"
            "items/bad.md:4: unknown field 'catgory' (did you mean 'category'?); fields are: "
            "title, date, category, summary, url, image, image_alt, author, tags, draft, pinned, "
            "publish_after, lang, source_id, feed",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nurl: javascript:alert(1)\n",
            "items/bad.md:6: url: the address must be an absolute http:// or https:// address, got 'javascript:alert(1)'",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nurl: https:///no-host\n",
            "items/bad.md:6: url: the address must be an absolute http:// or https:// address, got 'https:///no-host'",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nurl: javascript://e.org/%0Aalert(1)\n",
            "items/bad.md:6: url: the address must be an absolute http:// or https:// address, "
            "got 'javascript://e.org/%0Aalert(1)'",
        ),
        (
            "title: '   '\ndate: 2021-03-01\ncategory: News\nsummary: S\n",
            "items/bad.md:2: title: is empty",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nurl: 'https://e.org/\"><script>'\n",
            'items/bad.md:6: url: the address has characters that must be percent-encoded: " < >',
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nimage: https://e.org/x.png\n",
            "items/bad.md:6: image: needs an image_alt text describing it (screen readers, images off)",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\ndraft: yes please\n",
            "items/bad.md:6: draft: expected true or false, got the text 'yes please'",
        ),
        ("- just\n- a list\n", "items/bad.md:2: front matter must be 'field: value' lines"),
        (
            "title: T\ndate: 2021-02-30\ncategory: News\nsummary: S\n",
            "items/bad.md:3: date: cannot read '2021-02-30': day is out of range for month",
        ),
        (
            "title: T\ndate: 2021-03-23T25:00:00+01:00\ncategory: News\nsummary: S\n",
            "items/bad.md:3: date: cannot read '2021-03-23T25:00:00+01:00': hour must be in 0..23",
        ),
        (
            "title: T\ndate: 2021-03-01\ntitle: U\ncategory: News\nsummary: S\n",
            "items/bad.md:4: field 'title' is given twice (also on line 2)",
        ),
    ],
)
def test_bad_front_matter_is_reported_with_its_line(tmp_path: Path, front: str, expected: str) -> None:
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "bad.md").write_text(f"---\n{front}---\n", encoding="utf-8")
    assert problems(tmp_path / "items") == [expected]


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "bad.md").write_text("---\ntitle: T\ndate: [unclosed\ncategory: News\n---\n")
    (problem,) = problems(tmp_path / "items")
    # The parser notices at the line after the bracket; the wording is PyYAML's (C or pure Python).
    assert problem.startswith("items/bad.md:4: malformed front matter: while parsing a flow sequence")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "latin1.md").write_bytes(
        b"---\ntitle: Caf\xe9\ndate: 2021-03-01\ncategory: News\nsummary: S\n---\n"
    )
    assert problems(tmp_path / "items") == ["items/latin1.md:2: not UTF-8 text (byte 0xe9 at offset 14)"]


def test_missing_and_unclosed_front_matter(tmp_path: Path) -> None:
    write_item(tmp_path / "items", "plain.md", "Just text.\n")
    write_item(tmp_path / "items", "open.md", "---\ntitle: T\n")
    assert problems(tmp_path / "items") == [
        "items/open.md:1: front matter is not closed: add a line '---' after the fields",
        "items/plain.md:1: no front matter: an item file starts with a line '---'",
    ]


def test_drafts_hidden_and_skipped_files(tmp_path: Path) -> None:
    items = tmp_path / "items"
    write_item(items, "draft.md", GOOD.replace("summary:", "draft: true\nsummary:"))
    write_item(items, "_template.md", "not an item")
    write_item(items, ".hidden.md", "not an item")
    write_item(items, "notes.txt", "not an item")
    write_item(items, "ok.md", GOOD)
    assert [i.slug for i in scan(items, tz=TZ).items] == ["ok"]


def test_missing_items_folder(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope") == [f"{tmp_path / 'nope'}: items folder not found"]


# ---- what a bad file still tells: its date, so that a scan can tell whether it belongs to the window --------


def bad(front: str) -> BadItem:
    with pytest.raises(BadItem) as info:
        parse_item(Path("x.md"), f"---\n{front}---\n".encode(), TZ)
    return info.value


@pytest.mark.parametrize(
    "front",
    [
        "title:\ndate: 2021-03-10\ncategory: News\nsummary: S\n",  # a field missing
        "title: T\ndate: 2021-03-10\ncatgory: News\nsummary: S\n",  # an unknown field
        "title: T\ndate: 2021-03-10\ncategory: News\nsummary: S\nurl: ftp://x\n",  # a bad value
        "title: T\ntitle: U\ndate: 2021-03-10\ncategory: News\nsummary: S\n",  # twice, before the date
        "title: T\nurl: 2021-02-30\ndate: 2021-03-10\ncategory: News\nsummary: S\n",  # YAML, before it
        "title: T\ndate: '2021-03-10'\ncategory: News\nsummary: S\ndraft: maybe\n",  # date in quotes
    ],
)
def test_a_bad_file_keeps_its_readable_date(front: str) -> None:
    assert bad(front).when == datetime(2021, 3, 10, tzinfo=TZ)


@pytest.mark.parametrize(
    ("front", "line", "why"),
    [
        ("title: T\ncategory: News\nsummary: S\n", 1, "date: required field is missing or empty"),
        ("title: T\ndate: 31/03/2021\ncategory: News\nsummary: S\n", 3, "date: cannot read '31/03/2021'"),
        ("title: T\ndate: 2021-02-30\ncategory: News\nsummary: S\n", 3, "date: cannot read '2021-02-30'"),
        ("title: T\ndate: 2021-03-10\ndate: 2021-03-11\ncategory: N\nsummary: S\n", 4, "field 'date' is"),
    ],
)
def test_a_bad_file_without_a_readable_date_has_none(front: str, line: int, why: str) -> None:
    problem = bad(front)
    assert (problem.when, problem.line, problem.why[: len(why)]) == (None, line, why)


def test_the_first_problem_is_reported_even_when_later_fields_are_read() -> None:
    problem = bad("title: T\ntitle: U\nurl: 2021-02-30\ndate: 2021-03-10\ncategory: N\nsummary: S\n")
    assert (problem.line, problem.why) == (3, "field 'title' is given twice (also on line 2)")
    assert problem.when == datetime(2021, 3, 10, tzinfo=TZ)
    problem = bad("- a\n- b\n")
    assert (problem.line, problem.when) == (2, None)


@pytest.mark.parametrize(
    "front",
    [
        "date: 2021-03-10\ndraft: true\n",  # nothing but the date
        "title:\ndate: 2021-03-10\ncategory: [a, b]\nsummary: 7\ndraft: true\n",  # missing or not text
        "title: T\ndate: 2021-03-10\nnotes: unknown field\nurl: ftp://x\ndraft: true\nimage: not-a-url\n",
        "title: T\ntitle: U\nurl: 2021-02-30\ndate: 2021-03-10\ndraft: true\n",  # YAML problems elsewhere
    ],
)
def test_a_draft_is_checked_only_for_its_date(front: str) -> None:
    item = parse_item(Path("sub/idea.md"), f"---\n{front}---\n".encode(), TZ)
    assert (item.draft, item.slug, item.source, item.when) == (
        True,
        "idea",
        Path("sub/idea.md"),
        datetime(2021, 3, 10, tzinfo=TZ),
    )
    assert item.all_day


def test_a_draft_keeps_the_fields_that_read_as_text() -> None:
    front = "title: '  Half  done '\ndate: 2021-03-10T09:30:00+01:00\ncategory: 3\nsummary: |\n  a\n  b\ndraft: true\n"
    item = parse_item(Path("d.md"), f"---\n{front}---\n".encode(), TZ)
    assert (item.title, item.category, item.summary, item.all_day) == ("Half done", "", "a b", False)
    assert item.when == datetime(2021, 3, 10, 9, 30, tzinfo=TZ)


@pytest.mark.parametrize(
    ("front", "line", "why"),
    [
        ("title: T\ndraft: true\n", 1, "date: required field is missing or empty"),
        ("date: ''\ndraft: true\n", 2, "date: required field is missing or empty"),
        ("date: next week\ndraft: true\n", 2, "date: cannot read 'next week' as a date"),
        ("date: 2021-02-30\ndraft: true\n", 2, "date: cannot read '2021-02-30': day is out of range"),
        ("date: 2021-03-01\ndate: 2021-03-02\ndraft: true\n", 3, "field 'date' is given twice"),
    ],
)
def test_a_draft_needs_a_date(front: str, line: int, why: str) -> None:
    problem = bad(front)
    assert (problem.line, problem.why[: len(why)], problem.when) == (line, why, None)


def test_only_draft_true_makes_a_draft() -> None:
    assert bad("date: 2021-03-10\ndraft: 'true'\n").why == "title: required field is missing or empty"
    item = parse_item(Path("x.md"), GOOD.lstrip().replace("summary:", "draft: false\nsummary:").encode(), TZ)
    assert not item.draft


# ---- every problem of a file, in one run -----------------------------------------------------------------

FIELDS = (
    "title, date, category, summary, url, image, image_alt, author, tags, draft, pinned, publish_after, lang, "
    "source_id, feed"
)


def test_every_problem_of_a_file_is_reported_in_line_order() -> None:
    problem = bad("url: ftp://e.org\ntitle: '   '\ndate: 2021-03-10\nnotes: to do\ncategory: N\nsummary: S\n")
    assert problem.problems == (
        (2, "url: the address must be an absolute http:// or https:// address, got 'ftp://e.org'"),
        (3, "title: is empty"),
        (5, f"unknown field 'notes'; fields are: {FIELDS}"),
    )
    assert (problem.line, problem.why) == problem.problems[0]
    assert problem.when == datetime(2021, 3, 10, tzinfo=TZ)
    assert str(problem) == "\n".join(f"{line}: {why}" for line, why in problem.problems)


def test_every_field_is_checked_whatever_else_is_wrong() -> None:
    front = (
        "title: 1\ndate: 2021-03-10\ncategory: [a]\nsummary: 7\nurl: x\nimage: y\nimage_alt: 3\nauthor: 4\n"
        "tags: 5\ndraft: maybe\npinned: 2\npublish_after: soon\nlang: 'english please'\nnotes: z\n"
    )
    assert bad(front).problems == (
        (2, "title: expected text, got a number (put it in quotes)"),
        (4, "category: expected text, got a list"),
        (5, "summary: expected text, got a number (put it in quotes)"),
        (6, "url: the address must be an absolute http:// or https:// address, got 'x'"),
        (7, "image: the address must be an absolute http:// or https:// address, got 'y'"),
        (8, "image_alt: expected text, got a number (put it in quotes)"),
        (9, "author: expected text, got a number (put it in quotes)"),
        (10, "tags: expected a list of words, got a number"),
        (11, "draft: expected true or false, got the text 'maybe'"),
        (12, "pinned: expected true or false, got a number"),
        (13, "publish_after: cannot read 'soon' as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+HH:MM"),
        (14, "lang: expected a language code like en, fr or pt-BR, got 'english please'"),
        (15, f"unknown field 'notes'; fields are: {FIELDS}"),
    )


def test_every_missing_field_and_every_front_matter_problem_once() -> None:
    assert bad("url: https://e.org/\n").problems == (
        (1, "title: required field is missing or empty"),
        (1, "date: required field is missing or empty"),
        (1, "category: required field is missing or empty"),
        (1, "summary: required field is missing or empty"),
    )
    # A field given twice or that YAML cannot build is not also "missing": one problem per mistake.
    problem = bad("title: T\ntitle: U\ndate: 2021-02-30\ncategory: N\nsummary: ''\nsummary: S\nx: 1\n")
    assert problem.problems == (
        (3, "field 'title' is given twice (also on line 2)"),
        (4, "date: cannot read '2021-02-30': day is out of range for month"),
        (7, "field 'summary' is given twice (also on line 6)"),
        (8, "unknown field 'x'; fields are: " + FIELDS),
    )
    assert problem.when is None
    # An unknown field is said once, whatever its value; the fields there are listed once in a file.
    unknown = bad("title: T\ndate: 2021-03-10\ncategory: N\nsummary: S\nwhen: 2021-02-30\ncatgory: M\n")
    assert unknown.problems == (
        (6, "unknown field 'when'; fields are: " + FIELDS),
        (7, "unknown field 'catgory' (did you mean 'category'?)"),
    )
    # One that is neither a field nor readable: both said, and the fields after are read.
    assert bad("? [a, b]\n: c\ntitle: T\ndate: 2021-03-10\ncategory: N\nsummary: S\nurl: 7\n").problems == (
        (2, "front matter must be 'field: value' lines"),
        (8, "url: expected text, got a number (put it in quotes)"),
    )


@pytest.mark.parametrize(
    ("extra", "problems"),
    [
        ("image: https://e.org/x.png\nimage_alt: 7\n", [(7, "image_alt: expected text, got a number")]),
        ("image: https://e.org/x.png\nimage_alt: 2021-02-30\n", [(7, "image_alt: cannot read '2021-02-30'")]),
        (
            "image_alt: a\nimage: https://e.org/x.png\nimage_alt: b\n",
            [(8, "field 'image_alt' is given twice")],
        ),
        ("image: https://e.org/x.png\nimage_alt:\n", [(6, "image: needs an image_alt text describing it")]),
        ("image: ftp://e.org/x.png\n", [(6, "image: the address must be an absolute")]),
    ],
)
def test_an_image_needs_its_alt_text_only_when_none_is_given(
    extra: str, problems: list[tuple[int, str]]
) -> None:
    problem = bad(f"title: T\ndate: 2021-03-10\ncategory: N\nsummary: S\n{extra}")
    assert [
        (line, why[: len(start)]) for (line, why), (_, start) in zip(problem.problems, problems, strict=True)
    ] == problems


def test_a_draft_is_still_fine_with_bad_fields_and_fails_on_its_date_only() -> None:
    item = parse_item(
        Path("d.md"), b"---\ntitle: 7\ndate: 2021-03-10\nurl: x\nnotes: y\ndraft: true\n---\n", TZ
    )
    assert (item.draft, item.title, item.when) == (True, "", datetime(2021, 3, 10, tzinfo=TZ))
    assert bad("title: 7\ndate: soon\nnotes: y\ndraft: true\n").problems == (
        (3, "date: cannot read 'soon' as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+HH:MM"),
    )
    # The front matter's problems with other fields are not the draft's either.
    assert bad("title: T\ntitle: U\nurl: 2021-02-30\ndate: 2021-02-30\ndraft: true\n").problems == (
        (5, "date: cannot read '2021-02-30': day is out of range for month"),
    )
    assert bad("title: T\ndate: 2021-03-10\ndate: 2021-03-10\ndraft: true\n").problems == (
        (4, "field 'date' is given twice (also on line 3)"),
    )


# ---- digest new -------------------------------------------------------------------------------------------


def new(tmp_path: Path, title: str, **fields: str | None) -> Path:
    config = load_config(cwd=tmp_path, environ={})
    options: dict[str, str | None] = {"category": "News", "summary": "", "url": None, **fields}
    return new_item(config, title=title, today=date(2021, 4, 15), **options)  # type: ignore[arg-type]


def test_new_item_writes_a_file_the_scan_reads(tmp_path: Path) -> None:
    path = new(
        tmp_path,
        " Économie: l'AG à Lyon! ",
        category=" News ",
        summary=" Members meet. ",
        url="https://e.org/a",
    )
    assert path == tmp_path / "items" / "2021-04-15-economie-l-ag-a-lyon.md"
    assert path.read_text(encoding="utf-8") == (
        "---\ntitle: 'Économie: l''AG à Lyon!'\ndate: 2021-04-15\ncategory: News\n"
        "url: https://e.org/a\nsummary: Members meet.\n---\n"
    )
    (item,) = scan(tmp_path / "items", tz=TZ).items
    assert (item.title, item.category, item.summary, item.url) == (
        "Économie: l'AG à Lyon!",
        "News",
        "Members meet.",
        "https://e.org/a",
    )
    assert item.when == datetime(2021, 4, 15, tzinfo=TZ)


def test_new_item_without_url_or_summary(tmp_path: Path) -> None:
    path = new(tmp_path, "Idea")
    assert (
        path.read_text(encoding="utf-8")
        == "---\ntitle: Idea\ndate: 2021-04-15\ncategory: News\nsummary: ''\n---\n"
    )


def test_new_item_long_title_gives_a_short_file_name(tmp_path: Path) -> None:
    path = new(tmp_path, "word " * 30)
    assert path.name == "2021-04-15-" + "-".join(["word"] * 12) + ".md"  # 59 characters, cut at a dash


@pytest.mark.parametrize(
    ("title", "fields", "message"),
    [
        ("", {}, "the title must be one non-empty line"),
        ("   ", {}, "the title must be one non-empty line"),
        ("Two\nlines", {}, "the title must be one non-empty line"),
        ("Two\rlines", {}, "the title must be one non-empty line"),
        ("T", {"category": " "}, "--category must be one non-empty line"),
        ("T", {"category": "A\nB"}, "--category must be one non-empty line"),
        ("T", {"category": "A\rB"}, "--category must be one non-empty line"),
        (
            "T",
            {"url": "example.org"},
            "--url must be an absolute http:// or https:// address, got 'example.org'",
        ),
        ("T", {"url": "https://e.org/a b"}, "--url must not contain spaces or control characters"),
        ("T", {"url": "https://e.org/<x>"}, "--url has characters that must be percent-encoded: < >"),
    ],
)
def test_new_item_refuses_bad_input(tmp_path: Path, title: str, fields: dict[str, str], message: str) -> None:
    with pytest.raises(ItemError) as info:
        new(tmp_path, title, **fields)
    assert info.value.problems == [message]
    assert not (tmp_path / "items").exists()


def test_new_item_refuses_every_bad_value_at_once(tmp_path: Path) -> None:
    with pytest.raises(ItemError) as info:
        new(tmp_path, " ", category="A\x1bB", summary="x\x00", url="example.org")
    assert info.value.problems == [  # one entry: it is one file
        "the title must be one non-empty line\n"
        "--category has a control character (U+001B): remove it\n"
        "--summary has a control character (U+0000): remove it\n"
        "--url must be an absolute http:// or https:// address, got 'example.org'"
    ]
    assert not (tmp_path / "items").exists()


def test_new_item_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = new(tmp_path, "Same", summary="First.")
    with pytest.raises(ItemError) as info:
        new(tmp_path, "Same", summary="Second.")
    assert info.value.problems == ["items/2021-04-15-same.md already exists"]
    assert "First." in path.read_text(encoding="utf-8")


def test_new_item_cannot_create_the_folder_or_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "items").write_text("a file where the folder should be")
    with pytest.raises(ItemError) as info:
        new(tmp_path, "T")
    assert info.value.problems == ["items: cannot create the items folder: File exists"]
    (tmp_path / "items").unlink()
    (tmp_path / "items").symlink_to("/proc")  # a folder where no file can be made, even by root
    with pytest.raises(ItemError) as info:
        new(tmp_path, "T")
    (problem,) = info.value.problems  # shown through the link: /proc/2021-04-15-t.md
    assert problem.endswith("/2021-04-15-t.md: cannot write: No such file or directory")


def test_new_item_writes_only_what_the_scan_accepts(tmp_path: Path) -> None:
    with pytest.raises(ItemError) as info:
        new(tmp_path, "Bell\x07")
    assert info.value.problems == ["the title has a control character (U+0007): remove it"]
    with pytest.raises(ItemError) as info:
        new(tmp_path, "T", category="A\x1bB")
    assert info.value.problems == ["--category has a control character (U+001B): remove it"]
    with pytest.raises(ItemError) as info:
        new(tmp_path, "T", summary="x\x00")
    assert info.value.problems == ["--summary has a control character (U+0000): remove it"]
    path = new(tmp_path, "  Two   spaces ", category="News", summary="Line one\n  line two ")
    assert "title: Two spaces\n" in path.read_text(encoding="utf-8")
    (item,) = scan(tmp_path / "items", tz=TZ).items
    assert (item.title, item.summary) == ("Two spaces", "Line one line two")


def test_tags_slug_and_suffixes(tmp_path: Path) -> None:
    items = tmp_path / "items"
    write_item(items, "v1.2-release.markdown", GOOD.replace("summary:", "tags: one\nsummary:"))
    write_item(items, "plain.md", GOOD.replace("summary:", "tags: ['  a ', b]\nsummary:"))
    found = {i.slug: i for i in scan(items, tz=TZ).items}
    assert sorted(found) == ["plain", "v1.2-release"]  # the last extension only comes off
    assert (found["v1.2-release"].tags, found["plain"].tags) == (("one",), ("a", "b"))
    assert found["plain"].source == Path("plain.md")
    write_item(items, "bad.md", GOOD.replace("summary:", "tags: [a, '']\nsummary:"))
    assert problems(items) == ["items/bad.md:5: tags: expected a list of words, got a list"]


@pytest.mark.parametrize(
    ("given", "code"), [("fr", "fr"), ("FR", "fr"), ("pt-br", "pt_BR"), ("zh-Hant", "zh_Hant")]
)
def test_lang_pinned_and_publish_after(given: str, code: str) -> None:
    front = (
        f"---\ntitle: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nlang: {given}\npinned: true\n"
        "publish_after: 2021-03-02T09:00:00+01:00\n---\n"
    )
    item = parse_item(Path("a.md"), front.encode(), TZ)
    assert item.lang == code
    assert item.pinned is True
    assert item.publish_after == datetime.fromisoformat("2021-03-02T09:00:00+01:00")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("lang: 'english please'", "6: lang: expected a language code like en, fr or pt-BR"),
        ("pinned: yes please", "6: pinned: expected true or false"),
        ("publish_after: soon", "6: publish_after: cannot read 'soon' as a date"),
    ],
)
def test_bad_lang_pinned_publish_after(extra: str, why: str) -> None:
    front = f"---\ntitle: T\ndate: 2021-03-01\ncategory: News\nsummary: S\n{extra}\n---\n"
    with pytest.raises(BadItem) as info:
        parse_item(Path("a.md"), front.encode(), TZ)
    assert str(info.value).startswith(why)


def test_a_colon_in_an_unquoted_title_says_to_quote_it(tmp_path: Path) -> None:
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "bad.md").write_text(
        "---\ntitle: Update: the new office\ndate: 2021-03-01\ncategory: News\nsummary: S\n---\n"
    )
    (problem,) = problems(tmp_path / "items")
    assert problem.startswith("items/bad.md:2: malformed front matter: mapping values are not allowed")
    assert problem.endswith("""(a value with ': ' in it needs quotes: title: "Update: the new office")""")
