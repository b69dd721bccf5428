"""select.py: configured order, unknown categories after it, newest first, limits, no empty sections."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.items import Item
from digest.select import select
from digest.words import slugify
from digest.window import month

TZ = ZoneInfo("UTC")
MARCH = month("2021-03", TZ, "en")


def item(slug: str, day: int, category: str, *, draft: bool = False, month_: int = 3) -> Item:
    return Item(
        slug=slug,
        source=Path(f"{slug}.md"),
        title=slug.title(),
        when=datetime(2021, month_, day, tzinfo=TZ),
        all_day=True,
        category=category,
        summary="S",
        draft=draft,
    )


def test_configured_order_then_alphabetical_with_a_warning() -> None:
    items = [item("a", 1, "Zebra"), item("b", 2, "Events"), item("c", 3, "News"), item("d", 4, "apples")]
    digest = select(items, MARCH, order=("News", "Events", "Empty"))
    assert [s.name for s in digest.sections] == ["News", "Events", "apples", "Zebra"]
    assert digest.warnings == (
        "category 'apples' is not in [categories] order of digest.toml: placed after the configured ones",
        "category 'Zebra' is not in [categories] order of digest.toml: placed after the configured ones",
    )


def test_newest_first_and_ties_by_title() -> None:
    items = [item("b", 5, "News"), item("c", 20, "News"), item("a", 5, "News")]
    (section,) = select(items, MARCH, order=("News",)).sections
    assert [i.slug for i in section.items] == ["c", "a", "b"]


def test_outside_window_and_drafts_are_left_out() -> None:
    items = [item("in", 31, "News"), item("april", 1, "News", month_=4), item("draft", 2, "News", draft=True)]
    digest = select(items, MARCH, order=("News",))
    assert [i.slug for i in digest.items] == ["in"]


def test_limit_keeps_the_newest_and_counts_the_rest() -> None:
    items = [item(f"n{d}", d, "News") for d in range(1, 8)] + [item("e", 1, "Events")]
    digest = select(items, MARCH, order=("News", "Events"), limit=3)
    news, events = digest.sections
    assert [i.slug for i in news.items] == ["n7", "n6", "n5"]
    assert (news.more, news.total, events.more, digest.total) == (4, 7, 0, 8)


def test_no_items_no_sections() -> None:
    assert select([], MARCH, order=("News",)).sections == ()


def test_anchors() -> None:
    assert slugify("Spotlight Interviews with Co-operators") == "spotlight-interviews-with-co-operators"
    assert slugify("Économie sociale") == "economie-sociale"
    assert slugify("!!!", fallback="section") == "section"
    assert slugify("!!!") == "item"
    assert slugify("A title that runs on and on", max_len=12) == "a-title-that"
    assert slugify("A title that runs", max_len=8) == "a-title"  # no dash left at the end
    digest = select([item("a", 1, "A b"), item("b", 2, "A-b")], MARCH)
    assert [s.anchor for s in digest.sections] == ["a-b", "a-b-x"]
