"""--month / --week / --since+--until / --last / default -> Window(start, end, label, slug), tz-explicit.

A window is the half-open interval [start, end): 23:59 on the last day of March is in the March window,
00:00 on the first of April is not. The window after the last send (`after`) also names the items already
sent, which it leaves out whatever their date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.errors import EmptyWindow, WindowError
from digest.i18n import format_date, format_interval  # Babel's, with French's "1er"


@dataclass(frozen=True)
class Window:
    """A time interval [start, end) with a human label ("March 2021") and a folder name ("2021-03")."""

    start: datetime
    end: datetime
    label: str
    slug: str
    # The slugs of items a digest sent to a whole list already held (--since-last-send): left out.
    sent: frozenset[str] = frozenset()
    # --since-last-send: where the window of the last digest sent in full started, when known. An item due
    # from there to this window's start that no such digest held was written after that send, back-dated:
    # no window takes it, and digest/backdated.py says so.
    last_sent_start: datetime | None = None

    def __contains__(self, when: datetime) -> bool:
        return self.start <= when < self.end


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tzinfo=tz)


def _bound(text: str, tz: ZoneInfo, *, what: str) -> tuple[datetime, bool]:
    """A --since/--until value -> (aware datetime, is_plain_date)."""
    text = text.strip()
    try:
        return _midnight(date.fromisoformat(text), tz), True
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(
            f"{what} {text!r}: use a date (2021-03-31) or a date and time, in the configured time zone "
            "(2021-03-31T18:00) or with an offset (2021-03-31T18:00+01:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)  # a time without offset is read in the configured zone
    return dt.astimezone(tz), False


def month(value: str, tz: ZoneInfo, locale: str) -> Window:
    """--month 2021-03."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", value.strip())
    if not m or not 1 <= int(m[2]) <= 12:
        raise WindowError(f"--month {value!r}: use YYYY-MM, e.g. 2021-03")
    first = date(int(m[1]), int(m[2]), 1)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    label = format_date(first, "LLLL y", locale=locale)
    return Window(_midnight(first, tz), _midnight(nxt, tz), label, value.strip())


def week(value: str, tz: ZoneInfo, locale: str) -> Window:
    """--week 2021-W12 (ISO 8601 week, Monday to Sunday)."""
    m = re.fullmatch(r"(\d{4})-?W(\d{2})", value.strip(), flags=re.IGNORECASE)
    try:
        if not m:
            raise ValueError
        monday = date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise WindowError(f"--week {value!r}: use YYYY-Www, e.g. 2021-W12") from None
    sunday = monday + timedelta(days=6)
    label = format_interval(monday, sunday, "yMMMd", locale=locale)
    slug = f"{m[1]}-W{int(m[2]):02d}"
    return Window(_midnight(monday, tz), _midnight(sunday + timedelta(days=1), tz), label, slug)


def since(since: str, until: str | None, tz: ZoneInfo, locale: str, *, now: datetime) -> Window:
    """--since DATE [--until DATE], both inclusive: a plain --until date includes that whole day."""
    start, _ = _bound(since, tz, what="--since")
    if until is None:
        end = now.astimezone(tz)
        last_day = end.date()
    else:
        end, plain = _bound(until, tz, what="--until")
        last_day = end.date()
        # Inclusive: a plain date takes in its whole day, a time takes in that very instant.
        end = _midnight(end.date() + timedelta(days=1), tz) if plain else end + timedelta(microseconds=1)
    if end <= start:
        raise WindowError(f"--until is before --since ({until or 'now'} < {since})")
    return _range(start, end, last_day, tz, locale)


def last(value: str, tz: ZoneInfo, locale: str, *, now: datetime) -> Window:
    """--last 30d / 2w / 12h: up to now, from midnight of the day N days (weeks) ago, or N hours ago."""
    m = re.fullmatch(r"(\d+)\s*([hdw])", value.strip().lower())
    if not m or int(m[1]) == 0:
        raise WindowError(f"--last {value!r}: use a number and a unit: 30d (days), 2w (weeks) or 12h (hours)")
    n, unit = int(m[1]), m[2]
    end = now.astimezone(tz)
    if unit == "h":
        # Exact elapsed time (computed in UTC), so a DST change inside the window does not shift it an hour.
        start = (now.astimezone(UTC) - timedelta(hours=n)).astimezone(tz)
    else:
        # Whole days, as the label and the folder name say: every day they name is in, the first one from
        # its midnight, whatever the time of day the digest is built at.
        start = _midnight(end.date() - timedelta(days=n * 7 if unit == "w" else n), tz)
    return _range(start, end, end.date(), tz, locale)


def _range(start: datetime, end: datetime, last_day: date, tz: ZoneInfo, locale: str) -> Window:
    first_day = start.date()
    if first_day == last_day:
        label = format_date(first_day, "long", locale=locale)
    else:
        label = format_interval(first_day, last_day, "yMMMd", locale=locale)
    return Window(start, end, label, f"{first_day.isoformat()}_{last_day.isoformat()}")


def in_language(window: Window, locale: str) -> Window:
    """The same window labelled in another language ("March 2021" -> "mars 2021"), for that language's
    digest; the label is made as the window's own function made it, from its slug."""
    first = window.start.date()
    if re.fullmatch(r"\d{4}-\d{2}", window.slug):
        label = format_date(first, "LLLL y", locale=locale)
    elif re.fullmatch(r"\d{4}-W\d{2}", window.slug):
        label = format_interval(first, first + timedelta(days=6), "yMMMd", locale=locale)
    else:
        # "<first>_<last>", or "<first>_<last>-2" for a second window after a send on one day
        last_day = date.fromisoformat(window.slug.rpartition("_")[2][:10]) if "_" in window.slug else first
        label = (
            format_date(first, "long", locale=locale)
            if first == last_day
            else format_interval(first, last_day, "yMMMd", locale=locale)
        )
    return replace(window, label=label)


def previous_month(tz: ZoneInfo, locale: str, *, now: datetime) -> Window:
    """The calendar month before the one `now` falls in, in the configured zone."""
    today = now.astimezone(tz).date()
    first_this = today.replace(day=1)
    prev = first_this - timedelta(days=1)
    return month(f"{prev.year:04d}-{prev.month:02d}", tz, locale)


def resolve(
    *,
    tz: ZoneInfo,
    locale: str,
    now: datetime,
    month_: str | None = None,
    week_: str | None = None,
    since_: str | None = None,
    until_: str | None = None,
    last_: str | None = None,
) -> Window:
    """Turn the CLI's window options (at most one kind) into a Window; none means the previous month."""
    given = [
        n for n, v in (("--month", month_), ("--week", week_), ("--since", since_), ("--last", last_)) if v
    ]
    if len(given) > 1:
        raise WindowError(f"give one window only, not {' and '.join(given)}")
    if until_ and not since_:
        raise WindowError("--until needs --since")
    if month_:
        return month(month_, tz, locale)
    if week_:
        return week(week_, tz, locale)
    if since_:
        return since(since_, until_, tz, locale, now=now)
    if last_:
        return last(last_, tz, locale, now=now)
    return previous_month(tz, locale, now=now)


@dataclass(frozen=True)
class Sent:
    """What the digests sent to a whole list so far held, as `after` needs it."""

    newest_end: datetime  # the instant just after the newest item any of them held
    items: frozenset[str] = frozenset()  # their items' slugs, where the folder still holds what was sent
    # Just after the newest item of one whose folder was rebuilt since its send (its items are not known).
    unknown_end: datetime | None = None
    folders: frozenset[str] = frozenset()  # their folder names (out/<name>/)
    # Where the newest one's window started (its manifest's), when its items are known: the look-back
    # for back-dated items (Window.last_sent_start).
    window_start: datetime | None = None


def after(sent: Sent, tz: ZoneInfo, locale: str, *, now: datetime) -> Window:
    """--since-last-send: from the start of the day of the newest item sent, up to now, without the items
    already sent; EmptyWindow when that day has not begun yet (an item dated in the future was sent).

    By day, not by instant, because an item dated a whole day counts from its midnight: one dated today
    and written after a send today would be before a window starting just after that send's newest item,
    and no digest would ever take it. The items already sent are left out by slug, so none goes twice
    (an item edited since keeps its slug). The items of a digest whose folder was rebuilt since its send
    are not known: the window then starts just after its newest item, as the journal recorded it.
    """
    end = now.astimezone(tz)
    start = _midnight((sent.newest_end.astimezone(tz) - timedelta(microseconds=1)).date(), tz)
    if sent.unknown_end is not None:
        start = max(start, sent.unknown_end.astimezone(tz))
    if start >= end:
        raise EmptyWindow(
            f"nothing new since the last digest sent in full: its newest item is dated {start.date()}, "
            "not before now"
        )
    window = _range(start, end, end.date(), tz, locale)
    # Two sends on one day: the second's window has the first's name; a folder sent in full is not
    # rebuilt over, so the next one is <slug>-2, -3...
    slug, n = window.slug, 1
    while slug in sent.folders:
        n += 1
        slug = f"{window.slug}-{n}"
    return replace(window, slug=slug, sent=sent.items, last_sent_start=sent.window_start)
