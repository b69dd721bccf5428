"""select.py: configured order, unknown categories after it, newest first, limits, no empty sections."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.items import Item
from digest.select import select
from digest.window import month
from digest.words import slugify

TZ = ZoneInfo("UTC")
MARCH = month("2021-03", TZ, "en")
NOW = datetime(2021, 4, 15, 12, tzinfo=TZ)


def item(
    slug: str,
    day: int,
    category: str,
    *,
    draft: bool = False,
    month_: int = 3,
    title: str | None = None,
    publish_after: datetime | None = None,
) -> Item:
    return Item(
        slug=slug,
        source=Path(f"{slug}.md"),
        title=slug.title() if title is None else title,
        when=datetime(2021, month_, day, tzinfo=TZ),
        all_day=True,
        category=category,
        summary="S",
        draft=draft,
        publish_after=publish_after,
    )


def test_configured_order_then_alphabetical_with_a_warning() -> None:
    items = [item("a", 1, "Zebra"), item("b", 2, "Events"), item("c", 3, "News"), item("d", 4, "apples")]
    digest = select(items, MARCH, now=NOW, order=("News", "Events", "Empty"))
    assert [s.name for s in digest.sections] == ["News", "Events", "apples", "Zebra"]
    assert digest.warnings == (
        "category 'apples' is not in [categories] order of digest.toml: placed after the configured ones",
        "category 'Zebra' is not in [categories] order of digest.toml: placed after the configured ones",
    )


def test_newest_first_and_ties_by_title() -> None:
    # Title order (case aside) differs from slug order and from the order given: a sort by slug, by the
    # exact title ("Beta" < "Zulu" < "alpha") or no sort at all each gives another answer.
    items = [
        item("a", 5, "News", title="Zulu"),
        item("n", 20, "News", title="Zzz, but newest"),
        item("b", 5, "News", title="alpha"),
        item("c", 5, "News", title="Beta"),
        item("m", 1, "News", title="Aardvark, but oldest"),
    ]
    (section,) = select(items, MARCH, now=NOW, order=("News",)).sections
    assert [i.title for i in section.items] == [
        "Zzz, but newest",
        "alpha",
        "Beta",
        "Zulu",
        "Aardvark, but oldest",
    ]


def test_same_date_and_title_ties_by_slug() -> None:
    items = [item(s, 5, "News", title="Same") for s in ("y", "x", "z")]
    (section,) = select(items, MARCH, now=NOW).sections
    assert [i.slug for i in section.items] == ["x", "y", "z"]


def test_newest_first_by_instant_not_by_day() -> None:
    late = Item(
        slug="late",
        source=Path("late.md"),
        title="A",
        when=datetime(2021, 3, 5, 23, tzinfo=TZ),
        all_day=False,
        category="News",
        summary="S",
    )
    early = Item(
        slug="early",
        source=Path("early.md"),
        title="B",
        when=datetime(2021, 3, 5, 1, tzinfo=TZ),
        all_day=False,
        category="News",
        summary="S",
    )
    (section,) = select([early, late], MARCH, now=NOW).sections
    assert [i.slug for i in section.items] == ["late", "early"]


def test_outside_window_and_drafts_are_left_out() -> None:
    items = [item("in", 31, "News"), item("april", 1, "News", month_=4), item("draft", 2, "News", draft=True)]
    digest = select(items, MARCH, now=NOW, order=("News",))
    assert [i.slug for i in digest.items] == ["in"]


def test_limit_keeps_the_newest_and_counts_the_rest() -> None:
    items = [item(f"n{d}", d, "News") for d in range(1, 8)] + [item("e", 1, "Events")]
    digest = select(items, MARCH, now=NOW, order=("News", "Events"), limit=3)
    news, events = digest.sections
    assert [i.slug for i in news.items] == ["n7", "n6", "n5"]
    assert (news.more, news.total, events.more, digest.total) == (4, 7, 0, 8)


def test_no_items_no_sections() -> None:
    assert select([], MARCH, now=NOW, order=("News",)).sections == ()


def test_anchors() -> None:
    assert slugify("Spotlight Interviews with Co-operators") == "spotlight-interviews-with-co-operators"
    assert slugify("Économie sociale") == "economie-sociale"
    assert slugify("!!!", fallback="section") == "section"
    assert slugify("!!!") == "item"
    assert slugify("A title that runs on and on", max_len=12) == "a-title-that"
    assert slugify("A title that runs", max_len=8) == "a-title"  # no dash left at the end
    digest = select([item("a", 1, "A b"), item("b", 2, "A-b"), item("c", 3, "a B")], MARCH, now=NOW)
    assert [s.anchor for s in digest.sections] == ["a-b", "a-b-x", "a-b-x-x"]


def test_an_embargoed_item_is_left_out_until_its_time() -> None:
    now = datetime(2021, 3, 20, 12, tzinfo=TZ)
    items = [
        item("open", 2, "News"),
        item("later", 3, "News", publish_after=datetime(2021, 3, 20, 12, 0, 1, tzinfo=TZ)),
        item("lifted", 4, "News", publish_after=now),  # exactly now: the embargo is over
    ]
    (section,) = select(items, MARCH, now=now).sections
    assert [i.slug for i in section.items] == ["lifted", "open"]
    (section,) = select(items, MARCH, now=datetime(2021, 3, 21, tzinfo=TZ)).sections
    assert [i.slug for i in section.items] == ["lifted", "later", "open"]


def test_an_item_embargoed_past_its_month_is_due_in_the_next() -> None:
    """An item goes in the window holding the end of its embargo, whenever its own month is built: so it
    is never in two digests, and never in none."""
    held = item("held", 14, "News", publish_after=datetime(2021, 4, 1, 9, tzinfo=TZ))
    assert held.due == datetime(2021, 4, 1, 9, tzinfo=TZ)
    assert item("early", 14, "News", publish_after=datetime(2021, 3, 1, tzinfo=TZ)).due.day == 14
    assert select([held, item("open", 2, "News")], MARCH, now=NOW).sections[0].items[0].slug == "open"
    (section,) = select([held], month("2021-04", TZ, "en"), now=NOW).sections
    assert [i.slug for i in section.items] == ["held"]
    assert select([held], month("2021-04", TZ, "en"), now=datetime(2021, 4, 1, 8, tzinfo=TZ)).sections == ()


def test_a_category_whose_only_item_is_embargoed_has_no_section() -> None:
    items = [item("a", 2, "News"), item("b", 3, "Events", publish_after=datetime(2022, 1, 1, tzinfo=TZ))]
    digest = select(items, MARCH, now=NOW, order=("News", "Events"))
    assert [s.name for s in digest.sections] == ["News"]
    assert digest.total == 1
