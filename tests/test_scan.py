"""scan.py: the window's items, bad files as errors inside the window and warnings outside it, and the index
that keeps big archives fast (cold and warm give the same answer)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import write_item

from digest.errors import ItemError
from digest.index import Index
from digest.listing import Listers, Walk, iter_item_files
from digest.scan import INDEX_NAME, Scan, Scanner, scan

TZ = ZoneInfo("Europe/Zurich")

GOOD = """
---
title: A good item
date: 2021-03-10
category: News
summary: Something happened.
---
"""
MARCH = (datetime(2020, 3, 1, tzinfo=TZ), datetime(2020, 4, 1, tzinfo=TZ))


def make_archive(folder: Path, n: int) -> None:
    for k in range(n):
        month = k % 12 + 1
        write_item(folder, f"{k:04d}.md", GOOD.replace("2021-03-10", f"2020-{month:02d}-10"))


def dated(day: str, *, broken: str = "title") -> str:
    """An item of that date with one field emptied (broken="" for a good one)."""
    text = GOOD.replace("2021-03-10", day)
    return text.replace(f"\n{broken}:", f"\n{broken}: \n#") if broken else text


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index re-reads files changed in the 2 s before a scan; tests wait a few ticks instead."""
    monkeypatch.setattr("digest.index.MARGIN_NS", 0)


def tick() -> None:
    time.sleep(0.05)  # longer than the kernel's coarse clock tick that stamps ctime


def scan_march(
    items: Path, cache: Path | None, window: tuple[datetime | None, datetime | None] = MARCH
) -> Scan:
    return scan(items, tz=TZ, start=window[0], end=window[1], cache_dir=cache, relative_to=items.parent)


def errors_of(
    items: Path, cache: Path | None, window: tuple[datetime | None, datetime | None] = MARCH
) -> list[str]:
    with pytest.raises(ItemError) as info:
        scan_march(items, cache, window)
    return info.value.problems


CACHES = pytest.mark.parametrize("cached", [False, True], ids=["no-index", "index"])


def cache_of(tmp_path: Path, cached: bool) -> Path | None:
    return tmp_path / "cache" if cached else None


# ---- one unfinished item does not block every window ------------------------------------------------------


@CACHES
def test_a_bad_item_outside_the_window_is_a_warning(tmp_path: Path, no_margin: None, cached: bool) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 12)
    write_item(items, "later.md", dated("2020-04-01"))  # the first instant after the window
    write_item(items, "sub/earlier.md", dated("2020-02-29T23:59:59+01:00", broken="summary"))
    tick()
    for _ in range(3):  # cold, then warm (the index retries bad files every time), then warm again
        found = scan_march(items, cache)
        assert [i.slug for i in found.items] == ["0002"]
        assert found.warnings == (
            "items/later.md:2: title: required field is missing or empty "
            "(dated 2020-04-01, outside the window: left out)",
            "items/sub/earlier.md:5: summary: required field is missing or empty "
            "(dated 2020-02-29, outside the window: left out)",
        )


@CACHES
def test_a_bad_item_inside_the_window_is_an_error(tmp_path: Path, no_margin: None, cached: bool) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 12)
    write_item(items, "first.md", dated("2020-03-01"))  # the first instant of the window
    write_item(items, "last.md", dated("2020-03-31T23:59:59+02:00", broken="category"))
    write_item(items, "outside.md", dated("2020-05-01"))  # only a warning: not among the errors
    tick()
    for _ in range(2):
        assert errors_of(items, cache) == [
            "items/first.md:2: title: required field is missing or empty",
            "items/last.md:4: category: required field is missing or empty",
        ]


@CACHES
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace("2021-03-10", "31/03/2019"), "3: date: cannot read '31/03/2019' as a date"),
        (GOOD.replace("date: 2021-03-10\n", ""), "1: date: required field is missing or empty"),
        (GOOD.replace("date: 2021-03-10", "date: 2019-02-30"), "3: date: cannot read '2019-02-30'"),
        (GOOD.replace("title:", "title: [unclosed\nx:"), "3: malformed front matter"),
        ("no front matter\n", "1: no front matter"),
    ],
)
def test_a_bad_item_without_a_readable_date_is_an_error(
    tmp_path: Path, no_margin: None, cached: bool, text: str, problem: str
) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 12)
    write_item(items, "undated.md", text)
    tick()
    for _ in range(2):
        (error,) = errors_of(items, cache)
        assert error.startswith(f"items/undated.md:{problem}")


@CACHES
def test_without_a_window_every_bad_item_is_an_error(tmp_path: Path, cached: bool) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 3)
    write_item(items, "old.md", dated("1999-01-01"))
    write_item(items, "future.md", dated("2999-01-01", broken="summary"))
    for _ in range(2):
        assert errors_of(items, cache, (None, None)) == [
            "items/future.md:5: summary: required field is missing or empty",
            "items/old.md:2: title: required field is missing or empty",
        ]


def test_a_window_open_at_one_end(tmp_path: Path) -> None:
    items = tmp_path / "items"
    write_item(items, "old.md", dated("2020-02-01"))
    write_item(items, "new.md", dated("2020-05-01"))
    assert errors_of(items, None, (MARCH[0], None)) == [
        "items/new.md:2: title: required field is missing or empty"
    ]
    assert errors_of(items, None, (None, MARCH[1])) == [
        "items/old.md:2: title: required field is missing or empty"
    ]
    (items / "new.md").unlink()
    since = scan_march(items, None, (MARCH[0], None))
    assert (since.items, len(since.warnings)) == ([], 1)


@CACHES
def test_a_draft_is_checked_only_for_its_date(tmp_path: Path, no_margin: None, cached: bool) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 12)
    write_item(items, "idea.md", "---\ndate: 2020-03-15\ndraft: true\nnotes: to do\n---\n")
    write_item(items, "sub/0002.md", "---\ndate: 2020-03-16\ndraft: true\n---\n")  # a slug of a published one
    tick()
    for _ in range(2):
        found = scan_march(items, cache, (None, None))
        assert (len(found.items), found.warnings) == (12, ())
        assert "idea" not in [i.slug for i in found.items]


@CACHES
def test_a_draft_without_a_readable_date_is_an_error(tmp_path: Path, no_margin: None, cached: bool) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 12)
    write_item(items, "idea.md", "---\ntitle: Idea\ndate: soon\ndraft: true\n---\n")
    tick()
    for _ in range(2):
        assert errors_of(items, cache) == [
            "items/idea.md:3: date: cannot read 'soon' as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+HH:MM"
        ]


def test_an_item_that_becomes_bad_leaves_the_window_and_comes_back(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    tick()
    assert len(scan_march(items, cache).items) == 1
    may = items / "0004.md"
    good = may.read_text()
    may.write_text(good.replace("title: A good item", "title:"))
    tick()
    found = scan_march(items, cache)
    assert (len(found.items), len(found.warnings)) == (1, 1)
    may.write_text(good.replace("2020-05-10", "2020-03-20"))  # mended, and moved into March
    tick()
    found = scan_march(items, cache)
    assert ([i.slug for i in found.items], found.warnings) == (["0002", "0004"], ())


@CACHES
def test_each_problem_of_a_bad_file_is_said_and_the_header_counts_files(
    tmp_path: Path, no_margin: None, cached: bool
) -> None:
    items, cache = tmp_path / "items", cache_of(tmp_path, cached)
    make_archive(items, 12)
    many = dated("2020-03-10").replace("summary:", "notes: x\nsummary:").replace("News", "[News]")
    write_item(items, "many.md", many)
    write_item(items, "one.md", dated("2020-03-11", broken="summary"))
    write_item(items, "later.md", many.replace("2020-03-10", "2020-05-10"))
    write_item(items, "later-one.md", dated("2020-05-11"))
    tick()
    for _ in range(2):
        with pytest.raises(ItemError) as info:
            scan_march(items, cache)
        assert str(info.value) == (
            "2 bad item files:\n"
            "items/many.md:2: title: required field is missing or empty\n"
            "items/many.md:5: category: expected text, got a list\n"
            "items/many.md:6: unknown field 'notes'; fields are: title, date, category, summary, url, image, "
            "image_alt, author, tags, draft, pinned, publish_after, lang, source_id, feed\n"
            "items/one.md:5: summary: required field is missing or empty"
        )
    (items / "many.md").unlink()
    (items / "one.md").unlink()
    tick()
    for _ in range(2):  # outside the window: one line a file, however many problems it has
        assert scan_march(items, cache).warnings == (
            "items/later-one.md:2: title: required field is missing or empty "
            "(dated 2020-05-11, outside the window: left out)",
            "items/later.md:2: title: required field is missing or empty (and 2 more) "
            "(dated 2020-05-10, outside the window: left out)",
        )


# ---- duplicate slugs -----------------------------------------------------------------------------------------


def test_every_bad_file_is_reported_in_one_run(tmp_path: Path) -> None:
    items = tmp_path / "items"
    write_item(items, "a-good.md", GOOD)
    write_item(items, "b-bad.md", GOOD.replace("category: News", "category:"))
    write_item(items, "sub/c-bad.md", GOOD.replace("title: A good item", "title:"))
    write_item(items, "sub/a-good.md", GOOD)  # same slug as items/a-good.md
    assert errors_of(items, None, (None, None)) == [
        "items/b-bad.md:4: category: required field is missing or empty",
        "items/sub/a-good.md:1: duplicate slug 'a-good': items/a-good.md has the same file name",
        "items/sub/c-bad.md:2: title: required field is missing or empty",
    ]


@pytest.mark.parametrize(("day", "fatal"), [("2020-03-12", True), ("2020-06-12", False)])
def test_duplicate_slug_found_against_the_index(
    tmp_path: Path, no_margin: None, day: str, fatal: bool
) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    tick()
    scan(items, tz=TZ, cache_dir=cache)
    write_item(
        items, "sub/0005.md", GOOD.replace("2021-03-10", day)
    )  # the name of an unchanged, indexed file
    problem = "items/sub/0005.md:1: duplicate slug '0005': items/0005.md has the same file name"
    for _ in range(2):  # and again on the next run, though nothing changed
        if fatal:
            assert errors_of(items, cache) == [problem]
        else:
            found = scan_march(items, cache)
            assert found.warnings == (f"{problem} (dated {day}, outside the window: left out)",)
            assert [i.slug for i in found.items] == ["0002"]


def test_duplicate_slug_of_an_indexed_file_deleted_since(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    tick()
    scan(items, tz=TZ, cache_dir=cache)
    (items / "0005.md").unlink()
    write_item(items, "sub/0005.md", GOOD.replace("2021-03-10", "2020-03-12"))
    tick()
    found = scan_march(items, cache)
    assert ([str(i.source) for i in found.items], found.warnings) == (["0002.md", "sub/0005.md"], ())


# ---- the index -------------------------------------------------------------------------------------------


def test_index_parses_only_the_window_on_the_second_run(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 48)
    tick()
    first = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    assert (first.total_files, first.parsed_files, len(first.items)) == (48, 48, 4)
    second = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    # Nothing changed: not even the window's files are parsed, the index has them as they were parsed.
    assert (second.total_files, second.parsed_files, len(second.items)) == (48, 0, 4)
    assert second.items == first.items


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
    assert found.parsed_files == 3  # the three changed files (the unchanged one in March, 0014, is known)
    tick()
    again = scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache)
    assert (again.parsed_files, again.items) == (0, found.items)  # now all four are indexed in March


def test_a_window_file_edited_in_place_is_read_again_not_recalled(tmp_path: Path, no_margin: None) -> None:
    """The index keeps the window's items as parsed; an edit (same size, mtime put back) is seen by ctime."""
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 24)
    tick()
    first = scan_march(items, cache)
    march = items / "0002.md"
    st = march.stat()
    march.write_text(march.read_text().replace("A good item", "A new title"))
    os.utime(march, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert march.stat().st_size == st.st_size
    for scanner_run in ("speculate", "finish"):
        scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
        scanner.start_walk(background=False)
        if scanner_run == "speculate":  # the build's guess is already right: the file is not recalled
            guess = scanner.speculate(*MARCH)
            assert "A new title" in {i.title for i in guess}
        found = scanner.finish(*MARCH)
        assert {i.title for i in found.items} == {"A good item", "A new title"}
        assert len(found.items) == len(first.items)
    tick()
    again = scan_march(items, cache)
    assert (again.parsed_files, again.items) == (0, found.items)


def test_records_are_kept_for_the_windows_items_only(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 24)
    tick()
    march = scan_march(items, cache)
    index = Index(cache / INDEX_NAME, items_dir=items, tz=TZ.key)
    kept = index.records(sorted(index.all_keys()))
    assert sorted(kept) == sorted(str(i.source) for i in march.items) and len(kept) == 2
    index.close()
    july = (datetime(2020, 7, 1, tzinfo=TZ), datetime(2020, 8, 1, tzinfo=TZ))
    assert scan_march(items, cache, july).parsed_files == 2  # another month: read, and kept from now on
    assert scan_march(items, cache, july).parsed_files == 0
    assert scan_march(items, cache).parsed_files == 0


def test_an_edit_after_a_scan_with_the_clock_ahead_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan run while the clock was ahead (then set back) leaves the index believing it is up to date
    later than it is: a window file edited since must still be read again, not recalled."""
    items, cache = tmp_path / "items", tmp_path / "cache"
    write_item(items, "a.md", GOOD.replace("A good item", "Old title").replace("2021-03-10", "2020-03-10"))
    scan_march(items, cache)
    real = time.time_ns
    monkeypatch.setattr("digest.scan.clock.time_ns", lambda: real() + 60_000_000_000)
    scan_march(items, cache)  # the clock 60 s ahead: the index says it is current as of then
    monkeypatch.undo()
    tick()
    (items / "a.md").write_text((items / "a.md").read_text().replace("Old title", "New title"))
    for _ in range(2):
        assert [i.title for i in scan_march(items, cache).items] == ["New title"]


def test_a_damaged_record_or_a_deleted_window_file_is_read_from_the_folder(
    tmp_path: Path, no_margin: None
) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 24)
    tick()
    first = scan_march(items, cache)
    with sqlite3.connect(cache / INDEX_NAME) as db:
        db.execute("UPDATE files SET item = 'damaged' WHERE key = '0002.md'")
    again = scan_march(items, cache)
    assert (again.parsed_files, again.items) == (1, first.items)
    assert scan_march(items, cache).parsed_files == 0  # its record is written again
    (items / "0002.md").unlink()
    tick()
    scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
    scanner.start_walk(background=False)
    assert "0002.md" not in {str(i.source) for i in scanner.speculate(*MARCH)}
    assert "0002.md" not in {str(i.source) for i in scanner.finish(*MARCH).items}


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
    (items / "0002.md").unlink()  # in March
    (items / "0005.md").unlink()  # outside the window: only the listing can tell it is gone
    assert scan(items, tz=TZ, start=MARCH[0], end=MARCH[1], cache_dir=cache).items == []
    assert "0005.md" not in indexed(tmp_path)
    assert len(indexed(tmp_path)) == 10


def test_a_bad_file_is_not_described_by_the_index(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    tick()
    scan_march(items, cache)
    write_item(items, "0004.md", dated("2020-05-10"))
    tick()
    assert len(scan_march(items, cache).warnings) == 1
    assert "0004.md" not in indexed(tmp_path)
    index = Index(cache / INDEX_NAME, items_dir=items, tz=TZ.key)
    assert index.bad_keys() == {"0004.md"}


def test_a_replaced_items_folder_is_read_again(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    # A copy made before the scan: old ctimes, the same file names; one item moved from June into March.
    backup = tmp_path / "backup"
    shutil.copytree(items, backup)
    (backup / "0005.md").write_text((backup / "0005.md").read_text().replace("2020-06-10", "2020-03-11"))
    tick()
    assert len(scan_march(items, cache).items) == 1
    shutil.rmtree(items)
    backup.rename(items)
    tick()
    assert [i.slug for i in scan_march(items, cache).items] == ["0002", "0005"]


def indexed(tmp_path: Path) -> list[str]:
    index = Index(tmp_path / "cache" / INDEX_NAME, items_dir=tmp_path / "items", tz=TZ.key)
    return sorted(index.all_keys())


# ---- the folder listed in forked processes while the build renders ----------------------------------------


@pytest.fixture
def listers(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """listers(n): a warm background listing forks n processes, whatever the folder's size."""

    def use(n: int) -> None:
        monkeypatch.setattr("digest.scan.FORK_FROM", 1)
        monkeypatch.setattr("digest.scan.os.sched_getaffinity", lambda _pid: set(range(n)))

    return use


@pytest.mark.parametrize("n", [1, 2, 3])
def test_listing_in_child_processes_gives_the_same_result(
    tmp_path: Path, no_margin: None, listers: Callable[[int], None], n: int
) -> None:
    listers(n)
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
    assert (found.total_files, found.parsed_files) == (25, 1)


def test_a_file_mended_while_the_build_renders_is_read_as_it_ends(tmp_path: Path, no_margin: None) -> None:
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    tick()
    scan_march(items, cache)
    march = items / "0002.md"
    good = march.read_text()
    march.write_text(good.replace("title: A good item", "title:"))  # saved half-edited
    scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
    scanner.start_walk(background=False)
    assert scanner.speculate(*MARCH) == []  # the guess sees the broken file
    march.write_text(good.replace("A good item", "A mended item"))  # saved again before the listing ends
    (item,) = scanner.finish(*MARCH).items
    assert item.title == "A mended item"
    scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
    scanner.start_walk(background=False)
    assert [i.title for i in scanner.speculate(*MARCH)] == ["A mended item"]
    # Broken again, and moved out of the window: the guess must not outlive the file.
    march.write_text(good.replace("title: A good item", "title:").replace("2020-03-10", "2020-05-10"))
    found = scanner.finish(*MARCH)
    assert (found.items, found.warnings) == (
        [],
        (
            "items/0002.md:2: title: required field is missing or empty (dated 2020-05-10, outside the window: left out)",
        ),
    )
    march.write_text(good.replace("title: A good item", "title:"))
    with pytest.raises(ItemError, match=r"^items/0002\.md:2: title: required field is missing or empty$"):
        scan_march(items, cache)


def test_the_children_walks_are_joined_and_any_failure_falls_back_to_listing_here() -> None:
    here = Walk(1, [("a.md", "/x/a.md")], {"": 7})
    one = Walk(2, [("b.md", "/x/b.md")], {"": 8, "sub": 9})
    two = Walk(3, [("sub/c.md", "/x/sub/c.md")], {"": 8, "sub": 9})

    def boom() -> Walk:
        raise RuntimeError("the child fails")

    assert Listers([lambda: one], fallback=lambda: here).join() == one
    joined = Walk(5, [("b.md", "/x/b.md"), ("sub/c.md", "/x/sub/c.md")], {"": 8, "sub": 9})
    assert Listers([lambda: one, lambda: two], fallback=lambda: here).join() == joined
    assert Listers([lambda: one, boom], fallback=lambda: here).join() == here
    assert Listers([boom, lambda: two], fallback=lambda: here).join() == here
    # "sub" renamed to "new" between the two children's listings: each saw part of its files under one
    # name. Their walks are not joined; the folder is listed again, here.
    renamed = Walk(3, [("new/c.md", "/x/new/c.md")], {"": 8, "new": 9})
    assert Listers([lambda: one, lambda: renamed], fallback=lambda: here).join() == here
    moved_in = Walk(3, [], {"": 8, "sub": 9, "more": 11})
    assert Listers([lambda: one, lambda: moved_in], fallback=lambda: here).join() == here


def test_the_shares_of_a_listing_cover_every_file_once(tmp_path: Path) -> None:
    items = tmp_path / "items"
    make_archive(items, 40)
    make_archive(items / "sub" / "deeper", 30)
    make_archive(items / "notes.md", 3)  # a folder named like an item: every lister goes into it
    (items / "photo.jpg").write_bytes(b"")  # what is not an item, beside them
    whole: dict[str, int] = {}
    every = sorted(iter_item_files(items, known_dirs={}, since_ns=0, dirs=whole))
    assert len(every) == 73
    for n in (2, 3):
        shares = []
        for k in range(n):
            dirs: dict[str, int] = {}
            shares.append(sorted(iter_item_files(items, known_dirs={}, since_ns=0, dirs=dirs, share=(k, n))))
            assert dirs == whole  # every lister sees every folder
        assert all(shares)  # each lister has some of the files (70 names over n by hash)
        assert sorted(f for share in shares for f in share) == every


def test_the_listing_tells_files_from_folders_by_their_stat(tmp_path: Path) -> None:
    """Names are listed without their types: the one stat of each name says what it is. A folder with an
    item suffix is gone into, a link is followed, a broken link and hidden or underscored names are not
    items, and a file that is an item in name only (a socket, say) is not one either."""
    items = tmp_path / "items"
    make_archive(items, 3)
    make_archive(items / "notes.md", 2)  # a folder, whatever its name says
    (items / "linked.md").symlink_to(items / "0000.md")
    (items / "gone.md").symlink_to(items / "missing.md")
    (items / "elsewhere").symlink_to(items / "notes.md", target_is_directory=True)
    write_item(items, "_draft.md", GOOD)
    write_item(items, ".hidden.md", GOOD)
    (items / "readme.txt").write_text("not an item")
    os.mkfifo(items / "pipe.md")
    dirs: dict[str, int] = {}
    keys = sorted(k for k, _, _ in iter_item_files(items, known_dirs={}, since_ns=0, dirs=dirs))
    assert keys == [
        "0000.md", "0001.md", "0002.md", "elsewhere/0000.md", "elsewhere/0001.md",
        "linked.md", "notes.md/0000.md", "notes.md/0001.md",
    ]  # fmt: skip
    assert dirs == {"": items.stat().st_ino, "notes.md": (items / "notes.md").stat().st_ino,
                    "elsewhere": (items / "notes.md").stat().st_ino}  # fmt: skip


def test_a_link_that_leads_nowhere_is_skipped_and_a_folder_that_cannot_be_listed_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = tmp_path / "items"
    make_archive(items, 2)
    (items / "loop.md").symlink_to(items / "loop.md")  # a link to itself: no file, no folder
    (items / "loop").symlink_to(items / "loop")
    keys = sorted(k for k, _, _ in iter_item_files(items, known_dirs={}, since_ns=0, dirs={}))
    assert keys == ["0000.md", "0001.md"]
    make_archive(items / "locked", 1)
    real_open = os.open

    def refusing(path: str, *args: Any, **kwargs: Any) -> int:  # a folder we may not read (root may)
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("digest.listing.os.open", refusing)
    with pytest.raises(ItemError) as caught:
        list(iter_item_files(items, known_dirs={}, since_ns=0, dirs={}))
    assert caught.value.problems == [f"{items / 'locked'}/: cannot list the folder: Permission denied"]


@pytest.mark.parametrize("listing", ["forked", "here", "by-path"])
def test_an_edit_in_place_deep_in_the_archive_is_seen(
    tmp_path: Path,
    no_margin: None,
    listing: str,
    monkeypatch: pytest.MonkeyPatch,
    listers: Callable[[int], None],
) -> None:
    """Each file's own ctime is what tells an edit: an edit in place changes no folder's times. The
    listing stats each file relative to its open folder (or by its path where that is not supported)."""
    listers(2)
    if listing == "by-path":
        monkeypatch.setattr("digest.scan.os.supports_fd", set())
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    for k in range(12):
        write_item(
            items / "2019" / "deeper", f"deep-{k:02d}.md", GOOD.replace("2021-03", f"2020-{k + 1:02d}")
        )
    tick()
    assert scan_march(items, cache).parsed_files == 24
    deep = items / "2019" / "deeper" / "deep-06.md"  # July
    folder_times = [os.stat(d).st_mtime_ns for d in (items, deep.parent)]
    st = deep.stat()
    deep.write_text(deep.read_text().replace("2020-07-10", "2020-03-12"))
    os.utime(deep, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [os.stat(d).st_mtime_ns for d in (items, deep.parent)] == folder_times
    tick()
    open_files = len(os.listdir("/proc/self/fd"))
    scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
    scanner.start_walk(background=listing == "forked")
    found = scanner.finish(*MARCH)
    assert len(os.listdir("/proc/self/fd")) == open_files  # every folder opened to list it is closed
    assert sorted(str(i.source) for i in found.items) == [
        "0002.md",
        "2019/deeper/deep-02.md",
        "2019/deeper/deep-06.md",
    ]
    assert (found.total_files, found.parsed_files) == (24, 1)  # the edited one; the index has the others
    again = scan_march(items, cache)
    assert (again.items, again.parsed_files) == (found.items, 0)  # now indexed in March


def test_a_file_changed_as_the_last_scan_started_counts_as_changed(tmp_path: Path) -> None:
    items = tmp_path / "items"
    ctime = write_item(items, "a.md", GOOD).stat().st_ctime_ns
    known = {"": os.stat(items).st_ino}
    assert [c for _, _, c in iter_item_files(items, known_dirs=known, since_ns=ctime, dirs={})] == [True]
    assert [c for _, _, c in iter_item_files(items, known_dirs=known, since_ns=ctime + 1, dirs={})] == [False]
    assert [c for _, _, c in iter_item_files(items, known_dirs={}, since_ns=ctime + 1, dirs={})] == [True]


def test_names_starting_with_a_dot_or_an_underscore_are_not_items(tmp_path: Path) -> None:
    items = tmp_path / "items"
    for name in ("a.md", "_draft.md", ".hidden.md", "_old/b.md", ".git/c.md", "sub/d.md"):
        write_item(items, name, GOOD)
    dirs: dict[str, int] = {}
    keys = sorted(k for k, _, _ in iter_item_files(items, known_dirs={}, since_ns=0, dirs=dirs))
    assert keys == ["a.md", "sub/d.md"]
    assert sorted(dirs) == ["", "sub"]


@pytest.mark.parametrize(("fork_from", "forked"), [(None, 0), (1, 2)])
def test_a_warm_build_of_a_large_folder_lists_it_in_forked_processes(
    workspace: Path,
    run: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    fork_from: int | None,
    forked: int,
) -> None:
    """The sample's ten files are listed here (less than forking costs); a folder the index knows to be
    large is listed by one process per usable processor."""
    assert run("build", "--month", "2021-03").exit_code == 0  # fills the index
    with sqlite3.connect(workspace / ".digest-cache" / INDEX_NAME) as db:
        (listed,) = db.execute("SELECT value FROM meta WHERE key = 'listed'").fetchone()
    assert int(listed) == len(list((workspace / "items").glob("*.md")))
    if fork_from is not None:
        monkeypatch.setattr("digest.scan.FORK_FROM", fork_from)
    monkeypatch.setattr("digest.scan.os.sched_getaffinity", lambda _pid: {0, 1})
    forks: list[int] = []
    fork = os.fork

    def counted() -> int:
        pid = fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr("digest.scan.os.fork", counted)
    assert run("build", "--month", "2021-03").exit_code == 0
    assert len(forks) == forked


def test_an_item_embargoed_past_its_month_is_found_in_the_window_it_is_due_in(
    tmp_path: Path, no_margin: None
) -> None:
    """The index keeps when an item is due (the end of its embargo, when later than its date): a warm scan
    of that window finds it though its file did not change, and the window of its date does not hold it."""
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    write_item(items, "held.md", GOOD.replace("2021-03-10", "2020-02-20\npublish_after: 2020-03-02"))
    tick()
    february = (datetime(2020, 2, 1, tzinfo=TZ), datetime(2020, 3, 1, tzinfo=TZ))
    assert sorted(i.slug for i in scan_march(items, cache, february).items) == ["0001"]
    tick()
    found = scan_march(items, cache)
    assert sorted(i.slug for i in found.items) == ["0002", "held"]
    assert found.parsed_files == 2  # unchanged, but outside the last window: the index kept no record
    again = scan_march(items, cache)
    assert (again.items, again.parsed_files) == (found.items, 0)


def test_a_bad_or_duplicate_item_is_judged_by_when_it_is_due(tmp_path: Path) -> None:
    """A broken file dated in February but embargoed into March belongs to March: an error there, only a
    warning in February."""
    items = tmp_path / "items"
    make_archive(items, 3)
    embargo = "2020-02-20\npublish_after: 2020-03-02"
    write_item(items, "broken.md", GOOD.replace("2021-03-10", embargo).replace("title: A good item\n", ""))
    write_item(items / "sub", "0001.md", GOOD.replace("2021-03-10", embargo))  # the slug of 0001.md
    february = (datetime(2020, 2, 1, tzinfo=TZ), datetime(2020, 3, 1, tzinfo=TZ))
    found = scan_march(items, None, february)
    assert [i.slug for i in found.items] == ["0001"]
    assert found.warnings == (
        "items/broken.md:1: title: required field is missing or empty"
        " (dated 2020-02-20, due 2020-03-02, outside the window: left out)",
        "items/sub/0001.md:1: duplicate slug '0001': items/0001.md has the same file name"
        " (dated 2020-02-20, due 2020-03-02, outside the window: left out)",
    )
    with pytest.raises(ItemError) as raised:
        scan_march(items, None)
    assert raised.value.problems == [
        "items/broken.md:1: title: required field is missing or empty",
        "items/sub/0001.md:1: duplicate slug '0001': items/0001.md has the same file name",
    ]


def test_a_scan_that_never_finishes_leaves_no_process_or_open_file(
    tmp_path: Path, listers: Callable[[int], None]
) -> None:
    listers(2)
    items, cache = tmp_path / "items", tmp_path / "cache"
    make_archive(items, 12)
    scan(items, tz=TZ, cache_dir=cache)
    open_files = sorted(os.listdir("/proc/self/fd"))
    scanner = Scanner(items, tz=TZ, cache_dir=cache, relative_to=tmp_path)
    scanner.start_walk(background=True)
    children = Path(f"/proc/self/task/{os.getpid()}/children")
    assert len(children.read_text().split()) == 2
    scanner.close()  # as a build whose render failed does
    assert children.read_text().split() == []  # killed and reaped: no zombie either
    assert sorted(os.listdir("/proc/self/fd")) == open_files


def test_a_build_whose_render_fails_leaves_no_listing_process(
    workspace: Path, run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, listers: Callable[[int], None]
) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0  # fills the index
    listers(2)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug in the render")

    monkeypatch.setattr("digest.build._render", broken)
    with pytest.raises(RuntimeError, match="a bug in the render"):
        run("build", "--month", "2021-03")
    assert Path(f"/proc/self/task/{os.getpid()}/children").read_text().split() == []
