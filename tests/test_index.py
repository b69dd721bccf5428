"""index.py: the items index on its own, with inline inputs: what it records, what it answers, and how it
forgets (another time zone, folder or version; a damaged file) rather than fail a build."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import index as index_module
from digest.index import MARGIN_NS, Index
from digest.items import Item

ITEMS = Path("/srv/items")


def open_index(tmp_path: Path, *, tz: str = "Europe/Zurich", items_dir: Path = ITEMS) -> Index:
    return Index(tmp_path / "cache" / "items-index.sqlite", items_dir=items_dir, tz=tz)


def fill(tmp_path: Path, **kwargs: object) -> None:
    index = open_index(tmp_path, **kwargs)  # type: ignore[arg-type]
    index.update(
        good=[
            ("a.md", 100.0, False, "a"),
            ("b.md", 200.0, False, "b"),
            ("sub/b.md", 250.0, True, "b"),  # a draft
            ("c.md", 300.0, False, "c"),
        ],
        bad=["broken.md", "sub/worse.md"],
        gone=[],
        scan_started_ns=50 * MARGIN_NS,
        dirs={"": 1, "sub": 2},
    )
    index.close()


def test_a_new_index_knows_nothing(tmp_path: Path) -> None:
    index = open_index(tmp_path)
    assert (index.built_ns, index.count(), index.in_window(None, None)) == (0, 0, [])
    assert (index.bad_keys(), index.known_dirs(), list(index.all_keys())) == (set(), {}, [])
    assert (tmp_path / "cache" / "items-index.sqlite").is_file()  # the cache folder is made


def test_update_is_what_the_next_open_knows(tmp_path: Path) -> None:
    fill(tmp_path)
    index = open_index(tmp_path)
    assert index.built_ns == 49 * MARGIN_NS  # the scan's start, less the margin
    assert index.count() == 4
    assert sorted(index.all_keys()) == ["a.md", "b.md", "c.md", "sub/b.md"]
    assert index.bad_keys() == {"broken.md", "sub/worse.md"}
    assert index.known_dirs() == {"": 1, "sub": 2}
    assert sorted(index.keys_with_slug("b")) == ["b.md", "sub/b.md"]
    assert index.keys_with_slug("zzz") == []


def test_in_window_is_half_open_and_leaves_drafts_out(tmp_path: Path) -> None:
    fill(tmp_path)
    index = open_index(tmp_path)
    assert sorted(index.in_window(None, None)) == ["a.md", "b.md", "c.md"]  # not the draft sub/b.md
    assert sorted(index.in_window(100.0, 300.0)) == ["a.md", "b.md"]  # start in, end out
    assert sorted(index.in_window(100.5, 300.5)) == ["b.md", "c.md"]
    assert sorted(index.in_window(200.0, None)) == ["b.md", "c.md"]
    assert sorted(index.in_window(None, 200.0)) == ["a.md"]
    assert index.in_window(200.0, 200.0) == []


def test_a_later_update_replaces_bad_files_and_removes_gone_ones(tmp_path: Path) -> None:
    fill(tmp_path)
    index = open_index(tmp_path)
    index.update(
        good=[("broken.md", 150.0, False, "broken"), ("a.md", 400.0, False, "a")],
        bad=["new-bad.md"],
        gone=["c.md", "never-there.md"],
        scan_started_ns=60 * MARGIN_NS,
        dirs=None,  # the folders did not change: the ones recorded stay
    )
    index.close()
    index = open_index(tmp_path)
    assert index.built_ns == 59 * MARGIN_NS
    assert index.bad_keys() == {"new-bad.md"}  # the set of bad files is this scan's, not an accumulation
    assert sorted(index.in_window(None, None)) == ["a.md", "b.md", "broken.md"]
    assert index.in_window(350.0, None) == ["a.md"]  # an edited file moves
    assert index.known_dirs() == {"": 1, "sub": 2}
    index.update(good=[], bad=[], gone=[], scan_started_ns=61 * MARGIN_NS, dirs={"": 1})
    assert (index.known_dirs(), index.bad_keys()) == ({"": 1}, set())


@pytest.mark.parametrize(
    "change",
    [
        {"tz": "Asia/Tokyo"},  # the same plain date is another instant there
        {"items_dir": Path("/srv/other-items")},
    ],
)
def test_another_zone_or_folder_starts_afresh(tmp_path: Path, change: dict[str, object]) -> None:
    fill(tmp_path)
    index = open_index(tmp_path, **change)  # type: ignore[arg-type]
    assert (index.built_ns, index.count(), index.bad_keys(), index.known_dirs()) == (0, 0, set(), {})
    index.close()
    assert open_index(tmp_path).built_ns == 0  # and the old one is gone, not kept aside


@pytest.mark.parametrize("what", ["VERSION", "parser"])
def test_another_version_or_parser_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    fill(tmp_path)
    assert open_index(tmp_path).count() == 4
    if what == "VERSION":
        monkeypatch.setattr(index_module, "VERSION", index_module.VERSION + 1)
    else:  # digest upgraded: its parser's files are other files
        monkeypatch.setattr(index_module, "parser_version", lambda: "another parser")
    index = open_index(tmp_path)
    assert (index.built_ns, index.count()) == (0, 0)


def test_the_parser_version_follows_digest_its_parsing_source_and_the_parsers_it_uses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import digest
    from digest import items, markdown

    first = index_module.parser_version()
    assert first == index_module.parser_version()
    assert {"yaml:", "frontmatter:", "babel:", "markdown_it:"} <= {
        part[: part.index(":") + 1] for part in first.split()[2:]
    }
    assert "_yaml" in first  # the C loader is there, and counts
    monkeypatch.setattr(digest, "__version__", "99.0")
    assert index_module.parser_version() != first
    monkeypatch.undo()
    copy = tmp_path / "items.py"  # the same module with one character more: another parser
    copy.write_bytes(Path(items.__file__).read_bytes() + b"#")
    monkeypatch.setattr(items, "__file__", str(copy))
    assert index_module.parser_version() != first
    monkeypatch.undo()
    deeper = tmp_path / "markdown.py"  # the body's nesting check is the parse's too
    deeper.write_bytes(Path(markdown.__file__).read_bytes() + b"#")
    monkeypatch.setattr(markdown, "__file__", str(deeper))
    assert index_module.parser_version() != first


def test_records_are_kept_for_the_keys_given_and_replaced_by_a_later_update(tmp_path: Path) -> None:
    fill(tmp_path)
    index = open_index(tmp_path)
    assert index.records(["a.md", "b.md"]) == {}  # none given
    good = [("a.md", 100.0, False, "a"), ("b.md", 200.0, False, "b")]
    index.update(good=good, bad=[], gone=[], scan_started_ns=60 * MARGIN_NS, records={"a.md": "A"})
    assert index.records(["a.md", "b.md", "zzz.md"]) == {"a.md": "A"}
    index.update(good=good[:1], bad=[], gone=[], scan_started_ns=61 * MARGIN_NS, records={})
    assert index.records(["a.md"]) == {}  # parsed again without one: the old one is not kept
    many = [(f"{k}.md", float(k), False, str(k)) for k in range(1200)]
    index.update(good=many, bad=[], gone=[], scan_started_ns=62 * MARGIN_NS, records={k: k for k, *_ in many})
    assert len(index.records([k for k, *_ in many])) == 1200  # more keys than one statement may hold


SANTIAGO = ZoneInfo("America/Santiago")
STAT = (
    1_600_000_000_000_000_000,
    1_500_000_000_000_000_000,
    321,
    4242,
)  # ctime, mtime, size, inode  # its clocks jump from 00:00 to 01:00 on 2022-09-11


@pytest.mark.parametrize(
    "item",
    [
        Item(
            slug="a",
            source=Path("sub/a.md"),
            title="Ä title «quoted» & <b>",
            when=datetime(2022, 9, 11, tzinfo=SANTIAGO),  # a wall time in the gap: no offset keeps it
            all_day=True,
            category="News",
            summary="Two\nlines",
        ),
        Item(
            slug="b",
            source=Path("b.md"),
            title="B",
            when=datetime(2022, 4, 2, 23, 30, fold=1, tzinfo=SANTIAGO),  # the second 23:30 of that night
            all_day=False,
            category="Events",
            summary="S",
            body="# Body\n\ntext",
            url="https://example.org/b",
            image="https://example.org/b.png",
            image_alt="alt",
            author="Ann",
            tags=("x", "y"),
            draft=False,
            pinned=True,
            publish_after=datetime(2022, 4, 3, 8, tzinfo=SANTIAGO),
            lang="fr",
        ),
    ],
    ids=["gap", "every-field"],
)
def test_a_record_gives_back_the_very_same_item(item: Item) -> None:
    record = index_module.record_of(item, SANTIAGO, STAT)
    assert record is not None
    again = index_module.item_of(record, SANTIAGO, STAT)
    assert again == item and repr(again) == repr(item)
    assert again is not None and again.when.tzinfo is SANTIAGO and again.when.fold == item.when.fold
    assert again.when.utcoffset() == item.when.utcoffset()


def test_records_that_cannot_be_kept_exactly_or_read_are_none() -> None:
    item = Item(
        slug="a",
        source=Path("a.md"),
        title="T",
        when=datetime(2022, 1, 1, tzinfo=SANTIAGO),
        all_day=True,
        category="C",
        summary="S",
    )
    assert index_module.record_of(item, ZoneInfo("Europe/Zurich"), STAT) is None  # not the index's zone
    record = index_module.record_of(item, SANTIAGO, STAT)
    assert record is not None
    assert index_module.item_of(record, SANTIAGO, STAT) == item
    # The file in any other state (written, renamed, linked, touched: its ctime moves), or a record of it:
    for other in ((STAT[0] + 1, *STAT[1:]), (*STAT[:3], 1), (STAT[0], STAT[1], 322, STAT[3])):
        assert index_module.item_of(record, SANTIAGO, other) is None
    # The zone's rules changed since (another tzdata): the wall time is no longer that instant.
    data = json.loads(record)
    data["item"]["when"][2] += 3600
    assert index_module.item_of(json.dumps(data), SANTIAGO, STAT) is None
    for damaged in (
        "not json",
        "[]",
        "{}",
        record.replace('"title"', '"name"'),
        record.replace("2022-", "x"),
    ):
        assert index_module.item_of(damaged, SANTIAGO, STAT) is None


def test_the_folder_is_known_by_its_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    fill(tmp_path, items_dir=tmp_path / "real")
    assert open_index(tmp_path, items_dir=tmp_path / "link").count() == 4


def test_a_damaged_file_is_removed_and_the_next_index_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "items-index.sqlite"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database" * 100)
    index = open_index(tmp_path)
    assert (index.built_ns, index.count(), index.in_window(None, None), index.bad_keys()) == (0, 0, [], set())
    assert not path.exists()
    index.update(good=[("a.md", 1.0, False, "a")], bad=[], gone=[], scan_started_ns=3 * MARGIN_NS)  # a no-op
    index.close()
    assert not path.exists()
    fill(tmp_path)
    assert open_index(tmp_path).count() == 4


def test_a_table_lost_while_open_resets_the_file(tmp_path: Path) -> None:
    fill(tmp_path)
    index = open_index(tmp_path)
    with sqlite3.connect(index.path) as other:
        other.execute("DROP TABLE files")
    assert index.in_window(None, None) == []  # no error: the index knows nothing any more
    assert (index.built_ns, index.db) == (0, None)
    assert not index.path.exists()
    assert index.count() == 0


def test_a_failed_update_resets_the_file(tmp_path: Path) -> None:
    fill(tmp_path)
    index = open_index(tmp_path)
    with sqlite3.connect(index.path) as other:
        other.execute("DROP TABLE bad")
    index.update(good=[], bad=["x.md"], gone=[], scan_started_ns=70 * MARGIN_NS)
    assert (index.built_ns, index.db) == (0, None)
    assert not index.path.exists()
    assert open_index(tmp_path).built_ns == 0


def test_close_twice(tmp_path: Path) -> None:
    index = open_index(tmp_path)
    index.close()
    index.close()
    assert index.count() == 0
