"""window.py: exact bounds in the configured time zone, every option, clear errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.errors import EmptyWindow, WindowError
from digest.window import Sent, Window, after, in_language, resolve

TZ = ZoneInfo("Europe/Zurich")
NOW = datetime(2021, 4, 15, 12, 0, tzinfo=UTC)


def win(**opts: str | None):  # type: ignore[no-untyped-def]
    return resolve(tz=TZ, locale="en", now=NOW, **opts)


def test_month_bounds_are_exact() -> None:
    w = win(month_="2021-03")
    assert (w.start, w.end, w.label, w.slug) == (
        datetime(2021, 3, 1, tzinfo=TZ),
        datetime(2021, 4, 1, tzinfo=TZ),
        "March 2021",
        "2021-03",
    )
    assert datetime(2021, 3, 31, 23, 59, 59, 999999, tzinfo=TZ) in w
    assert datetime(2021, 4, 1, tzinfo=TZ) not in w
    assert datetime(2021, 2, 28, 23, 59, tzinfo=TZ) not in w
    # 23:30 UTC on 31 March is already 1 April in Zurich (UTC+2 in summer time): out.
    assert datetime(2021, 3, 31, 23, 30, tzinfo=UTC) not in w
    assert datetime(2021, 2, 28, 23, 30, tzinfo=UTC) in w


def test_december_rolls_over_and_month_names_follow_the_language() -> None:
    w = resolve(tz=TZ, locale="fr", now=NOW, month_="2020-12")
    assert (w.start, w.end, w.label) == (
        datetime(2020, 12, 1, tzinfo=TZ),
        datetime(2021, 1, 1, tzinfo=TZ),
        "décembre 2020",  # French month names are lower case,
    )


def test_default_is_the_previous_calendar_month_in_the_configured_zone() -> None:
    assert win().slug == "2021-03"
    # 23:30 UTC on 31 Dec is already January in Zurich: the previous month is December.
    new_year = datetime(2020, 12, 31, 23, 30, tzinfo=UTC)
    assert resolve(tz=TZ, locale="en", now=new_year).slug == "2020-12"
    assert resolve(tz=ZoneInfo("UTC"), locale="en", now=new_year).slug == "2020-11"


def test_iso_week() -> None:
    w = win(week_="2021-W12")
    assert (w.start, w.end, w.slug) == (
        datetime(2021, 3, 22, tzinfo=TZ),
        datetime(2021, 3, 29, tzinfo=TZ),
        "2021-W12",
    )
    assert w.label == "Mar 22\u2009–\u200928, 2021"  # Babel uses thin spaces around the dash


def test_since_until_are_inclusive() -> None:
    w = win(since_="2021-03-15", until_="2021-03-23")
    assert (w.start, w.end, w.slug) == (
        datetime(2021, 3, 15, tzinfo=TZ),
        datetime(2021, 3, 24, tzinfo=TZ),
        "2021-03-15_2021-03-23",
    )
    assert datetime(2021, 3, 23, 23, 59, tzinfo=TZ) in w


def test_since_with_offset_and_open_end() -> None:
    w = win(since_="2021-04-01T08:00+00:00")
    assert w.start == datetime(2021, 4, 1, 10, 0, tzinfo=TZ)
    assert w.end == NOW
    assert (w.start.tzinfo, w.end.tzinfo) == (TZ, TZ)  # both in the configured zone, like every bound
    assert win(last_="1d").end.tzinfo == TZ


def test_since_without_offset_is_read_in_the_configured_zone() -> None:
    assert win(since_="2021-03-05T10:00", until_="2021-03-06").start == datetime(2021, 3, 5, 10, 0, tzinfo=TZ)


def test_last() -> None:
    w = win(last_="30d")
    # Days and weeks are whole days, from midnight of the first one; hours are exact.
    assert (w.start, w.end, w.label, w.slug) == (
        datetime(2021, 3, 16, tzinfo=TZ),
        NOW,
        "Mar 16\u2009–\u2009Apr 15, 2021",
        "2021-03-16_2021-04-15",
    )
    assert win(last_="2w").start == datetime(2021, 4, 1, tzinfo=TZ)
    assert win(last_="12h").start == NOW - timedelta(hours=12)


@pytest.mark.parametrize("clock", [time(0, 0), time(0, 1), time(9, 30), time(23, 59, 59, 999999)])
def test_last_days_take_in_the_whole_first_day_at_any_time_of_day(clock: time) -> None:
    now = datetime.combine(date(2021, 12, 1), clock, tzinfo=TZ)
    w = resolve(tz=TZ, locale="en", now=now, last_="30d")
    assert (w.label, w.slug) == ("Nov 1\u2009–\u2009Dec 1, 2021", "2021-11-01_2021-12-01")
    assert datetime(2021, 11, 1, tzinfo=TZ) in w  # an item dated the first day the label names
    assert datetime(2021, 10, 31, 23, 59, 59, 999999, tzinfo=TZ) not in w
    assert w.start == datetime(2021, 11, 1, tzinfo=TZ)
    weeks = resolve(tz=TZ, locale="en", now=now, last_="1w")
    assert (weeks.start, weeks.slug) == (datetime(2021, 11, 24, tzinfo=TZ), "2021-11-24_2021-12-01")


@pytest.mark.parametrize(
    ("now", "days", "start_utc"),
    [
        # Zurich moved its clocks forward on 28 March 2021 (midnight was still +01:00) and back on
        # 31 October 2021 (midnight was still +02:00).
        (datetime(2021, 3, 28, 0, 30, tzinfo=TZ), 1, "2021-03-26T23:00"),
        (datetime(2021, 3, 29, 0, 30, tzinfo=TZ), 1, "2021-03-27T23:00"),
        (datetime(2021, 3, 29, 23, 30, tzinfo=TZ), 1, "2021-03-27T23:00"),
        (datetime(2021, 3, 30, 0, 30, tzinfo=TZ), 1, "2021-03-28T22:00"),
        (datetime(2021, 11, 1, 0, 30, tzinfo=TZ), 1, "2021-10-30T22:00"),
        (datetime(2021, 11, 1, 23, 30, tzinfo=TZ), 1, "2021-10-30T22:00"),
        (datetime(2021, 11, 2, 0, 30, tzinfo=TZ), 1, "2021-10-31T23:00"),
        (datetime(2021, 4, 27, 0, 30, tzinfo=TZ), 30, "2021-03-27T23:00"),  # one of the 30 days had 23 hours
        (datetime(2021, 3, 31, 22, 30, tzinfo=UTC), 1, "2021-03-30T22:00"),  # 00:30 on 1 April in Zurich
    ],
)
def test_last_days_across_a_change_of_clock_start_at_that_days_midnight(
    now: datetime, days: int, start_utc: str
) -> None:
    w = resolve(tz=TZ, locale="en", now=now, last_=f"{days}d")
    start = datetime.fromisoformat(start_utc).replace(tzinfo=UTC)
    assert w.start == start
    assert w.start.astimezone(TZ).time() == time()  # that day's midnight on the wall clock
    assert w.slug == f"{start.astimezone(TZ).date().isoformat()}_{now.astimezone(TZ).date().isoformat()}"
    assert start in w
    assert start - timedelta(microseconds=1) not in w


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"month_": "2021-13"}, "--month '2021-13': use YYYY-MM, e.g. 2021-03"),
        ({"month_": "March"}, "--month 'March': use YYYY-MM, e.g. 2021-03"),
        ({"week_": "2021-W54"}, "--week '2021-W54': use YYYY-Www, e.g. 2021-W12"),
        ({"last_": "30"}, "--last '30': use a number and a unit: 30d (days), 2w (weeks) or 12h (hours)"),
        (
            {"since_": "yesterday"},
            "--since 'yesterday': use a date (2021-03-31) or a date and time, in the configured time zone",
        ),
        ({"until_": "2021-03-01"}, "--until needs --since"),
        (
            {"since_": "2021-03-10", "until_": "2021-03-01"},
            "--until is before --since (2021-03-01 < 2021-03-10)",
        ),
        ({"month_": "2021-03", "week_": "2021-W12"}, "give one window only, not --month and --week"),
    ],
)
def test_errors(opts: dict[str, str], message: str) -> None:
    with pytest.raises(WindowError) as info:
        win(**opts)
    assert str(info.value).startswith(message)


def test_until_with_a_time_takes_in_that_instant() -> None:
    w = win(since_="2021-03-15", until_="2021-03-23T18:00")
    assert w.end == datetime(2021, 3, 23, 18, 0, 0, 1, tzinfo=TZ)
    assert datetime(2021, 3, 23, 18, 0, tzinfo=TZ) in w
    assert w.slug == "2021-03-15_2021-03-23"


def test_since_and_until_at_the_same_instant_is_an_error() -> None:
    with pytest.raises(WindowError, match=r"--until is before --since"):
        win(since_="2021-03-15T10:00", until_="2021-03-15T09:59:59.999999")
    w = win(since_="2021-03-15T10:00", until_="2021-03-15T10:00")  # that one instant
    assert (w.end - w.start, w.label, w.slug) == (
        timedelta(microseconds=1),
        "March 15, 2021",
        "2021-03-15_2021-03-15",
    )


def test_last_zero_is_an_error_and_a_short_span_is_labelled_with_its_day() -> None:
    with pytest.raises(WindowError, match=r"--last '0d': use a number and a unit"):
        win(last_="0d")
    assert win(last_="12h").label == "April 15, 2021"
    assert win(last_="2d").label == "Apr 13\u2009–\u200915, 2021"


def test_last_hours_are_elapsed_time_across_a_change_of_clock() -> None:
    # Zurich moved its clocks forward at 02:00 on 28 March 2021: 24 hours before 12:00 on the 28th is
    # 11:00 on the 27th by the wall clock, not 12:00.
    now = datetime(2021, 3, 28, 12, 0, tzinfo=TZ)
    w = resolve(tz=TZ, locale="en", now=now, last_="24h")
    assert (w.start, w.end) == (datetime(2021, 3, 27, 11, 0, tzinfo=TZ), now)
    assert w.end.astimezone(UTC) - w.start.astimezone(UTC) == timedelta(hours=24)


def test_after_a_send_the_window_starts_on_the_day_of_its_newest_item() -> None:
    # The newest item sent was at 12:00 on 1 April in Zurich: the window takes all of 1 April, less what went.
    sent = Sent(datetime(2021, 4, 1, 10, 0, tzinfo=UTC), items=frozenset({"a", "b"}))
    w = after(sent, TZ, "en", now=NOW)
    assert (w.start, w.end, w.slug, w.sent) == (
        datetime(2021, 4, 1, tzinfo=TZ),
        NOW,
        "2021-04-01_2021-04-15",
        frozenset({"a", "b"}),
    )
    assert w.start.tzinfo == TZ and w.end.tzinfo == TZ
    assert w != Window(w.start, w.end, w.label, w.slug)  # leaving out other items: another window


@pytest.mark.parametrize(
    ("newest_end", "first_day"),
    [
        (datetime(2021, 4, 2, tzinfo=TZ), date(2021, 4, 1)),  # a whole-day item of 1 April ends at midnight
        (datetime(2021, 4, 2, 0, 0, 0, 1, tzinfo=TZ), date(2021, 4, 2)),  # an item at 00:00 on 2 April
        (datetime(2021, 4, 1, 22, 30, tzinfo=UTC), date(2021, 4, 2)),  # 00:30 on 2 April in Zurich
    ],
)
def test_the_day_is_the_newest_items_own_in_the_configured_zone(
    newest_end: datetime, first_day: date
) -> None:
    assert after(Sent(newest_end), TZ, "en", now=NOW).start == datetime.combine(first_day, time(), tzinfo=TZ)


def test_a_sent_folder_rebuilt_since_starts_the_window_after_its_newest_item() -> None:
    day = datetime(2021, 4, 14, tzinfo=TZ)
    later = day + timedelta(hours=9)
    assert after(Sent(later, unknown_end=later), TZ, "en", now=NOW).start == later
    # An older digest whose folder was rebuilt: only when its newest item is later that day does it count.
    assert after(Sent(later, unknown_end=day - timedelta(hours=1)), TZ, "en", now=NOW).start == day
    assert after(
        Sent(later, unknown_end=day + timedelta(hours=2)), TZ, "en", now=NOW
    ).start == day + timedelta(hours=2)


def test_nothing_new_when_the_window_would_start_at_or_after_now() -> None:
    with pytest.raises(
        EmptyWindow,
        match=r"^nothing new since the last digest sent in full: its newest item is dated 2021-04-16, ",
    ):
        after(Sent(datetime(2021, 4, 16, 12, tzinfo=TZ)), TZ, "en", now=NOW)
    with pytest.raises(EmptyWindow):
        after(Sent(NOW, unknown_end=NOW), TZ, "en", now=NOW)
    just = NOW - timedelta(microseconds=1)
    assert after(Sent(NOW, unknown_end=just), TZ, "en", now=NOW).label == "April 15, 2021"


def test_a_second_window_on_one_day_gets_its_own_folder() -> None:
    sent = Sent(datetime(2021, 4, 15, 9, tzinfo=TZ), folders=frozenset({"2021-03", "2021-04-15_2021-04-15"}))
    w = after(sent, TZ, "fr", now=NOW)
    assert (w.slug, w.label) == ("2021-04-15_2021-04-15-2", "15 avril 2021")
    third = after(Sent(sent.newest_end, frozenset({"x"}), folders=sent.folders | {w.slug}), TZ, "en", now=NOW)
    assert third.slug == "2021-04-15_2021-04-15-3"
    assert (in_language(third, "de").label, in_language(third, "de").sent) == ("15. April 2021", third.sent)
    assert in_language(after(Sent(datetime(2021, 4, 10, tzinfo=TZ)), TZ, "en", now=NOW), "fr").label == (
        "9–15 avr. 2021"
    )


def test_previous_month_in_january_and_week_53() -> None:
    assert resolve(tz=TZ, locale="en", now=datetime(2021, 1, 10, tzinfo=TZ)).slug == "2020-12"
    w = win(week_="2020w53")
    assert (w.start, w.end, w.slug) == (
        datetime(2020, 12, 28, tzinfo=TZ),
        datetime(2021, 1, 4, tzinfo=TZ),
        "2020-W53",
    )
