"""`digest list --explain`: every item file the scan read, in the digest or not, and why.

The verdicts follow the build's own rules in the build's order: a draft never appears; an item dated
outside the window is left out (with --since-last-send, one dated before the window is "before the last
send", one a digest sent in full already held is "sent", and one due before the window but after the start
of the last sent digest's window that no digest sent in full held is "never_sent": back-dated, see
digest/backdated.py); an item under embargo (`publish_after` still to come) is left out; an item of the
window is in the email, or only in the web version because the per-category limit or [email] fit moved it
there. With [email] fit on, the explanation renders the email as a build does (that is what decides what
moves).

Every item file is parsed (no index): an explanation is about all of them, not only the window's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from digest.backdated import Backdated, Entry, find
from digest.config import Config
from digest.fsutil import rel_path
from digest.items import Item
from digest.outdir import out_option
from digest.scan import Scanner
from digest.select import Digest, embargoed, select
from digest.window import Window

SCHEMA = 1  # of the --json output: bump when a field changes meaning or goes away

# status -> its heading in the human output, in the order shown
STATUSES = {
    "in": "In the email",
    "online": "In the web version only",
    "out": "Left out",
}
# reason -> status
REASONS = {
    "selected": "in",
    "limit": "online",
    "fit": "online",
    "draft": "out",
    "before_window": "out",
    "after_window": "out",
    "before_last_send": "out",
    "never_sent": "out",
    "sent": "out",
    "embargo": "out",
}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One item file and what the build does with it."""

    source: str  # the item file, relative to the workspace
    slug: str
    title: str
    date: str  # ISO 8601: YYYY-MM-DD for a whole day, else a date-time with its offset
    category: str
    status: str  # a key of STATUSES
    reason: str  # a key of REASONS
    detail: str  # the reason in words: "3 days before the window"
    lang: str = ""  # the language of the digest it goes into (its `lang`, or the workspace's)


@dataclass(frozen=True)
class Explanation:
    """Every item considered for one window, and the scan's warnings (bad files outside the window)."""

    window: Window
    verdicts: tuple[Verdict, ...]
    warnings: tuple[str, ...]

    def count(self, status: str) -> int:
        """How many items have this status."""
        return sum(1 for v in self.verdicts if v.status == status)

    def to_json(self) -> str:
        """The --json output (schema in docs/reference.md)."""
        w = self.window
        data = {
            "schema": SCHEMA,
            "window": {
                "slug": w.slug,
                "label": w.label,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
            },
            "counts": {s: self.count(s) for s in STATUSES},
            "items": [asdict(v) for v in self.verdicts],
            "warnings": list(self.warnings),
        }
        return json.dumps(data, indent=2, ensure_ascii=False)


def explain(config: Config, window: Window, *, now: datetime, after_last_send: bool = False) -> Explanation:
    """Every item file under items/ with its verdict for this window (bad files raise ItemError as a build
    would, or are warnings when dated outside the window)."""
    scanner = Scanner(config.paths.items, tz=config.tz, cache_dir=None, relative_to=config.paths.root)
    scanner.start_walk(background=False)
    found = scanner.finish(window.start, window.end)
    everything = list(scanner.parsed.values())  # drafts and other windows too: parsed, checked, kept
    # One digest per language, as the build makes them: the limit and the fit act on each.
    shown: set[str] = set()  # the fit's moves are among them: checked first
    moved_by_fit: set[str] = set()
    order = config.language_order()
    langs = {config.digest_language(i.lang) for i in found.items}
    for lang in [c for c in order if c in langs] + sorted(langs - set(order)):
        mine = [i for i in found.items if config.digest_language(i.lang) == lang]
        sections = config.texts(lang).order  # the language's [languages.xx] order, or [categories] order
        digest = select(mine, window, now=now, order=sections, limit=config.categories.limit)
        moved_by_fit |= _fit_moves(config, digest, now=now, lang=lang, main=not shown)
        shown |= {i.slug for i in digest.items}
    late = find(
        (
            Entry(rel_path(config.paths.items / i.source, config.paths.root), i.due, i.slug)
            for i in everything
            if not i.draft
        ),
        window,
        out=out_option(config.paths.out, config.paths.root),
    )
    verdicts = []
    for item in everything:
        reason, detail = _why(
            item,
            window,
            now=now,
            shown=shown,
            by_fit=moved_by_fit,
            after_last_send=after_last_send,
            late=late,
        )
        verdicts.append(
            Verdict(
                source=rel_path(config.paths.items / item.source, config.paths.root),
                slug=item.slug,
                title=item.title,
                date=item.when.date().isoformat() if item.all_day else item.when.isoformat(),
                category=item.category,
                status=REASONS[reason],
                reason=reason,
                detail=detail,
                lang=config.digest_language(item.lang),
            )
        )
    place = {i.slug: n for n, i in enumerate(_reading_order(config, found.items, window, now=now))}
    verdicts.sort(
        key=lambda v: (
            list(STATUSES).index(v.status),
            place.get(v.slug, len(place)),
            v.reason,
            v.date,
            v.source,
        )
    )
    warnings = (*found.warnings, late.warning()) if late else found.warnings
    return Explanation(window, tuple(verdicts), warnings)


def _reading_order(config: Config, items: list[Item], window: Window, *, now: datetime) -> tuple[Item, ...]:
    """The window's items as the web version shows them: by section, newest first."""
    return select(items, window, now=now, order=config.categories.order).items


def _fit_moves(config: Config, digest: Digest, *, now: datetime, lang: str, main: bool) -> set[str]:
    """The slugs [email] fit moves to the web version (none when fit is off or the window is empty)."""
    if not config.email.fit or not digest.sections:
        return set()
    from digest.fit import fit_email
    from digest.render import Renderer

    renderer = Renderer(config, now=now, lang=lang, main=main)
    return {i.slug for i in fit_email(config, digest, renderer.render(digest), renderer).moved}


def _why(
    item: Item,
    window: Window,
    *,
    now: datetime,
    shown: set[str],
    by_fit: set[str],
    after_last_send: bool,
    late: Backdated | None = None,
) -> tuple[str, str]:
    """(reason, detail) of one item, in the build's order of rules."""
    if item.draft:
        return "draft", "draft: true"
    if item.due >= window.end and item.due > item.when and item.when < window.end:
        assert item.publish_after is not None
        return "embargo", (
            f"embargoed until {item.publish_after.isoformat()} (publish_after), after the window: "
            "it goes in the window holding that date"
        )
    if item.due < window.start:
        gap = _span(window.start - item.due)
        if late and item.slug in late.slugs:
            return "never_sent", f"{gap} before the window, never sent (back-dated?): {late.advice()}"
        if after_last_send:
            return "before_last_send", f"{gap} before the window: before the day of the newest item sent"
        return "before_window", f"{gap} before the window"
    if item.when >= window.end:
        if item.when == window.end:  # a whole day just after: "less than a minute after" would puzzle
            return "after_window", "at the window's end: the window stops just before it"
        return "after_window", f"{_span(item.when - window.end)} after the window"
    if item.slug in window.sent:
        return "sent", "already in a digest sent in full"
    if embargoed(item, now):
        assert item.publish_after is not None
        return "embargo", f"embargoed until {item.publish_after.isoformat()} (publish_after)"
    if item.slug in by_fit:
        return "fit", "moved online by the fit: the email would pass [email] fit_budget"
    if item.slug in shown:
        return "selected", "in the email"
    return "limit", "over the per-category limit ([categories] limit): moved online"


def _span(delta: timedelta) -> str:
    """A gap in words, rounded down: "3 days", "5 hours", "1 minute", "less than a minute"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return "less than a minute"


def format_explanation(explanation: Explanation) -> str:
    """The human output: one block per status, one line per item with its reason."""
    lines: list[str] = []
    for status, heading in STATUSES.items():
        group = [v for v in explanation.verdicts if v.status == status]
        if not group:
            continue
        if lines:
            lines.append("")
        lines.append(f"{heading} ({len(group)}):")
        for v in group:
            why = "" if v.reason == "selected" else f"  [{v.detail}]"
            lang = f"[{v.lang}] " if len({x.lang for x in explanation.verdicts}) > 1 else ""
            lines.append(f"  {v.date[:10]}  {lang}{v.category}: {v.title}  ({v.source}){why}")
    return "\n".join(lines)
