"""items.py: parsing, every kind of bad file reported as path:line, and the index that keeps big archives fast."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, write_item

from digest.errors import ItemError
from digest.items import Scanner, Walk, _in_child, scan

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
    assert item.when == datetime(2021, 3, 11, 5, 30, tzinfo=TZ)  # converted into the configured zone
    assert not item.all_day
    assert item.summary == "Two lines of summary."
    assert item.tags == ("one", "two")
    assert item.body == "Body *text*."
    assert (item.image, item.image_alt, item.author) == ("https://example.org/a.png", "A picture", "Ana")


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
            "items/bad.md:4: unknown field 'catgory' (did you mean 'category'?); fields are: "
            "title, date, category, summary, url, image, image_alt, author, tags, draft",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nurl: javascript:alert(1)\n",
            "items/bad.md:6: url: url must be an absolute http:// or https:// address, got 'javascript:alert(1)'",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nurl: 'https://e.org/\"><script>'\n",
            'items/bad.md:6: url: url has characters that must be percent-encoded: " < >',
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\nimage: https://e.org/x.png\n",
            "items/bad.md:6: image: needs an image_alt text describing it (screen readers, images off)",
        ),
        (
            "title: T\ndate: 2021-03-01\ncategory: News\nsummary: S\ndraft: yes please\n",
            "items/bad.md:6: draft: expected true or false, got str",
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


def test_every_bad_file_is_reported_in_one_run(tmp_path: Path) -> None:
    items = tmp_path / "items"
    write_item(items, "a-good.md", GOOD)
    write_item(items, "b-bad.md", GOOD.replace("category: News", "category:"))
    write_item(items, "sub/c-bad.md", GOOD.replace("title: A good item", "title:"))
    write_item(items, "sub/a-good.md", GOOD)  # same slug as items/a-good.md
    assert problems(items) == [
        "items/b-bad.md:4: category: required field is missing or empty",
        "items/sub/a-good.md:1: duplicate slug 'a-good': items/a-good.md has the same file name",
        "items/sub/c-bad.md:2: title: required field is missing or empty",
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


# ---- the index -------------------------------------------------------------------------------------------


def make_archive(folder: Path, n: int) -> None:
    for k in range(n):
        month = k % 12 + 1
        write_item(folder, f"{k:04d}.md", GOOD.replace("2021-03-10", f"2020-{month:02d}-10"))


MARCH = (datetime(2020, 3, 1, tzinfo=TZ), datetime(2020, 4, 1, tzinfo=TZ))


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index re-reads files changed in the 2 s before a scan; tests wait a few ticks instead."""
    monkeypatch.setattr("digest.index.MARGIN_NS", 0)


def tick() -> None:
    time.sleep(0.05)  # longer than the kernel's coarse clock tick that stamps ctime


def test_index_parses_only_the_window_on_the_second_run(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 48)
    tick()
    first = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    assert (first.total_files, first.parsed_files, len(first.items)) == (48, 48, 4)
    second = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    assert (second.parsed_files, len(second.items)) == (4, 4)
    assert [i.slug for i in second.items] == [i.slug for i in first.items]


def test_index_never_misses_an_edited_or_new_file(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 24)
    tick()
    assert scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).parsed_files == 24
    tick()
    # Move a July item into March, keeping its size and restoring its mtime: the ctime still changes.
    july = items / "0006.md"
    st = july.stat()
    july.write_text(july.read_text().replace("2020-07-10", "2020-03-11"))
    os.utime(july, ns=(st.st_atime_ns, st.st_mtime_ns))
    # A new file whose name says nothing about its date.
    write_item(items, "zzz-unrelated-name.md", GOOD.replace("2021-03-10", "2020-03-31T23:59:00+02:00"))
    # A file renamed: same content, same mtime, new name.
    (items / "0002.md").rename(items / "renamed.md")
    tick()
    found = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    assert sorted(i.slug for i in found.items) == ["0006", "0014", "renamed", "zzz-unrelated-name"]
    assert found.parsed_files == 4  # the three changed files, plus the unchanged one in March (0014)
    tick()
    again = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    assert (again.parsed_files, len(again.items)) == (4, 4)  # now all four are indexed in March


@pytest.mark.parametrize("how", ["rename", "move-in", "replace", "nested-rename"])
def test_index_never_misses_files_in_a_moved_folder(tmp_path: Path, no_margin: None, how: str) -> None:
    """Moving or renaming a folder changes the folder's ctime, not the ctime of the files inside it."""
    items, cache, outside = tmp_path / "items", tmp_path / "cache", tmp_path / "outside"
    make_archive(items / "a" / "b", 12)  # one of them in March
    write_item(outside / "c" / "d", "moved.md", GOOD.replace("2021-03-10", "2020-03-05"))
    tick()
    assert len(scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).items) == 1
    tick()
    if how == "rename":
        (items / "a").rename(items / "z")
    elif how == "move-in":
        (outside / "c").rename(items / "c")
    elif how == "replace":  # same folder name, another folder (from a backup, say)
        shutil.rmtree(items / "a")
        (outside / "c").rename(items / "a")
    else:
        (items / "a" / "b").rename(items / "a" / "renamed")
    tick()
    found = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    uncached = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1])
    assert sorted(i.source for i in found.items) == sorted(i.source for i in uncached.items)
    assert len(found.items) == {"rename": 1, "move-in": 2, "replace": 1, "nested-rename": 1}[how]


def test_duplicate_slug_found_against_the_index(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    tick()
    scan(items, tz=TZ, cache_dir=cache)
    write_item(items, "sub/0005.md", GOOD)  # same file name as an unchanged, indexed file
    for _ in range(2):  # and again on the next run, though nothing changed
        with pytest.raises(ItemError) as info:
            scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
        assert info.value.problems == [
            "items/sub/0005.md:1: duplicate slug '0005': items/0005.md has the same file name"
        ]


def test_index_reports_bad_files_outside_the_window_every_time(tmp_path: Path) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    write_item(
        items, "broken.md", GOOD.replace("2021-03-10", "2019-01-01").replace("title: A good item", "title:")
    )
    for _ in range(2):
        with pytest.raises(ItemError, match=r"broken\.md:2: title: required field"):
            scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    scan(items, tz=TZ, cache_dir=cache)
    index = cache / "items-index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)
    assert len(scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).items) == 1
    assert len(scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).items) == 1
    assert index.read_bytes().startswith(b"SQLite format 3")


def test_index_follows_the_time_zone(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    write_item(items, "edge.md", GOOD.replace("2021-03-10", "2020-03-01"))
    tick()
    assert len(scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).items) == 1
    tokyo = ZoneInfo("Asia/Tokyo")  # the same plain date is another instant there
    march = (datetime(2020, 3, 1, tzinfo=tokyo), datetime(2020, 4, 1, tzinfo=tokyo))
    assert len(scan(items, tz=tokyo, start=march[0], end=march[1], cache_dir=cache).items) == 1


def test_deleted_file_leaves_the_index(tmp_path: Path) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    scan(items, tz=TZ, cache_dir=cache)
    (items / "0002.md").unlink()
    assert scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).items == []


# ---- the folder listed in a second process while the build renders ----------------------------------------


def test_listing_in_a_child_process_gives_the_same_result(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items / "y", 24)
    tick()
    scan(items, tz=TZ, cache_dir=cache)
    write_item(items, "new-in-march.md", GOOD.replace("2021-03-10", "2020-03-20"))
    scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
    assert scanner.warm
    scanner.start_walk(background=True)
    guess = scanner.speculate(*MARCH)
    assert sorted(i.slug for i in guess) == ["0002", "0014"]  # what the index knew
    found = scanner.finish(*MARCH)
    assert sorted(i.slug for i in found.items) == ["0002", "0014", "new-in-march"]  # what the listing found


def test_a_child_that_fails_falls_back_to_listing_here() -> None:
    here = Walk(1, [("a.md", "/x/a.md")], {"": 7})

    def boom() -> Walk:
        raise RuntimeError("the child fails")

    assert _in_child(boom, fallback=lambda: here)() == here
    child = Walk(2, [("b.md", "/x/b.md")], {"": 8, "sub": 9})
    assert _in_child(lambda: child, fallback=lambda: here)() == child
