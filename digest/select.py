"""Items + Window + category order -> Digest: sections in the configured order, newest first inside each.

Pure: no files, no clock (the build's `now` is passed in). Categories that are not configured follow
alphabetically and are reported in `Digest.warnings`; empty categories are left out; a per-category limit
keeps the newest N and counts the rest; an item belongs to the window holding its `due` instant (its date, or
its embargo's end when later); an item under embargo (`publish_after` later than `now`) is left out,
and so is an item the window names as already sent (`Window.sent`, after the last send).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from digest.items import Item
from digest.window import Window
from digest.words import slugify


@dataclass(frozen=True)
class Section:
    """One category of the digest."""

    name: str
    anchor: str  # an id for in-page links: "spotlight-interviews-with-co-operators"
    items: tuple[Item, ...]  # shown, newest first
    more: int  # how many more items the limit left out (shown in the web version)

    @property
    def total(self) -> int:
        """Items in this category in the window, shown or not."""
        return len(self.items) + self.more


@dataclass(frozen=True)
class Digest:
    """A selection of items, grouped, ready to render."""

    window: Window
    sections: tuple[Section, ...]
    warnings: tuple[str, ...] = ()

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item shown, in reading order."""
        return tuple(i for s in self.sections for i in s.items)

    @property
    def total(self) -> int:
        """Items in the window, shown or not."""
        return sum(s.total for s in self.sections)


def embargoed(item: Item, now: datetime) -> bool:
    """Whether the item's `publish_after` is still to come at `now` (then no build selects it)."""
    return item.publish_after is not None and item.publish_after > now


def newest_first(items: Iterable[Item]) -> list[Item]:
    """The order of a section: newest first, then by title (case aside), then by slug."""
    return sorted(items, key=lambda i: (-i.when.timestamp(), i.title.casefold(), i.slug))


def select(
    items: Iterable[Item],
    window: Window,
    *,
    now: datetime,
    order: tuple[str, ...] = (),
    limit: int = 0,
) -> Digest:
    """Group the items inside the window by category; drafts, embargoed items and the items the window
    names as already sent never appear."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        if (
            not item.draft
            and item.due in window
            and item.slug not in window.sent
            and not embargoed(item, now)
        ):
            groups.setdefault(item.category, []).append(item)
    extra = sorted((c for c in groups if c not in order), key=str.casefold)
    warnings = tuple(
        f"category {c!r} is not in [categories] order of digest.toml: placed after the configured ones"
        for c in extra
    )
    sections = []
    used: set[str] = set()
    for name in [*(c for c in order if c in groups), *extra]:
        newest = newest_first(groups[name])
        shown = newest[:limit] if limit else newest
        anchor = slugify(name, fallback="section")
        while anchor in used:
            anchor += "-x"
        used.add(anchor)
        sections.append(Section(name, anchor, tuple(shown), len(newest) - len(shown)))
    return Digest(window=window, sections=tuple(sections), warnings=warnings)
