"""French dates say "1er" for the first of a month ("1er décembre 2026"), wherever a day is shown: the items'
dates in the HTML and text parts, the window's label in the subject and on the archive page. Other days,
and other languages, are Babel's own."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.dates import format_interval as babel_interval
from click.testing import Result
from conftest import write_item

from digest.i18n import format_date, format_datetime, format_interval
from digest.window import in_language, month, since, week

Run = Callable[..., Result]
FIRST, SECOND = date(2026, 12, 1), date(2026, 12, 2)
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fmt", "first", "second"),
    [
        ("long", "1er décembre 2026", "2 décembre 2026"),
        ("medium", "1er déc. 2026", "2 déc. 2026"),
        ("full", "mardi 1er décembre 2026", "mercredi 2 décembre 2026"),
        ("short", "01/12/2026", "02/12/2026"),  # "dd": a number in a table, not a day in a sentence
        ("d MMMM", "1er décembre", "2 décembre"),
        ("EEEE d", "mardi 1er", "mercredi 2"),
        ("d/M/y", "1/12/2026", "2/12/2026"),  # a day in figures: no "1er"
    ],
)
def test_french_days(fmt: str, first: str, second: str) -> None:
    assert format_date(FIRST, fmt, "fr") == first
    assert format_date(SECOND, fmt, "fr") == second
    assert format_date(datetime(2026, 12, 1, 23, 30, tzinfo=PARIS), fmt, "fr") == first  # an item's `when`


@pytest.mark.parametrize("lang", ["fr_CA", "fr_BE", "fr_CH"])
def test_every_french_says_1er(lang: str) -> None:
    assert format_date(FIRST, "long", lang).startswith("1er ")
    assert format_date(SECOND, "long", lang).startswith("2 ")


FRENCHES = ["fr", "fr_CA", "fr_CH"]


@pytest.mark.parametrize("lang", FRENCHES)
@pytest.mark.parametrize("fmt", ["d/M/y", "d.M.y", "y-M-d", "d/MM/yy", "d-M", "M/d", "d", "d LL y"])
def test_a_numeric_date_has_no_1er(lang: str, fmt: str) -> None:
    # "1er" belongs to a day in words ("1er avril"), never to one in figures ("1er/4/2021" is wrong).
    assert format_date(date(2021, 4, 1), fmt, lang) == babel_date(date(2021, 4, 1), fmt, locale=lang)
    when = datetime(2021, 4, 1, 9, 30, tzinfo=UTC)
    assert format_datetime(when, fmt + " HH:mm", lang) == babel_datetime(when, fmt + " HH:mm", locale=lang)


@pytest.mark.parametrize("lang", FRENCHES)
@pytest.mark.parametrize(
    ("fmt", "first"),
    [
        ("d MMM y", "1er avr. 2021"),
        ("d MMMM", "1er avril"),
        ("d LLL", "1er avr."),
        ("d MMMMM", "1er A"),  # a narrow month is a letter: still words
        ("EEEE d", "jeudi 1er"),  # a weekday's name: a day in words too
        ("EEE d/M", "jeu. 1er/4"),  # ... but then the month is a figure: CLDR has no such pattern
        ("d/M/y (MMMM)", "1er/4/2021 (avril)"),
    ],
)
def test_a_day_in_words_has_1er(lang: str, fmt: str, first: str) -> None:
    assert format_date(date(2021, 4, 1), fmt, lang) == first
    assert format_date(date(2021, 4, 2), fmt, lang) == babel_date(date(2021, 4, 2), fmt, locale=lang)


def test_the_short_standard_dates_have_no_1er() -> None:
    day = date(2021, 4, 1)
    assert format_date(day, "short", "fr_BE") == "1/04/21"  # CLDR's "d/MM/yy": a day in figures
    assert format_date(day, "medium", "fr_BE") == "1er avr. 2021"
    for lang in FRENCHES:
        assert format_date(day, "short", lang) == babel_date(day, "short", locale=lang)
        assert format_datetime(datetime(2021, 4, 1, 9, tzinfo=UTC), "short", lang) == babel_datetime(
            datetime(2021, 4, 1, 9, tzinfo=UTC), "short", locale=lang
        )


@pytest.mark.parametrize("lang", FRENCHES)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2021, 4, 1), date(2021, 4, 7)),
        (date(2021, 3, 29), date(2021, 4, 1)),
        (date(2021, 3, 1), date(2021, 4, 1)),
        (date(2021, 1, 1), date(2022, 1, 1)),
        (date(2021, 4, 1), date(2021, 4, 1)),
    ],
)
@pytest.mark.parametrize("skeleton", ["yMd", "Md", "d", "yMEd", "MEd"])
def test_a_numeric_interval_has_no_1er(lang: str, start: date, end: date, skeleton: str) -> None:
    assert format_interval(start, end, skeleton, lang) == babel_interval(start, end, skeleton, locale=lang)


@pytest.mark.parametrize("lang", FRENCHES)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2021, 4, 1), date(2021, 4, 7)),
        (date(2021, 3, 29), date(2021, 4, 1)),
        (date(2021, 3, 1), date(2021, 4, 1)),
        (date(2021, 1, 1), date(2022, 1, 1)),
        (date(2020, 12, 28), date(2021, 1, 1)),
    ],
)
@pytest.mark.parametrize("skeleton", ["yMMMd", "MMMd", "yMMMEd", "yMMMMd"])
def test_a_textual_interval_is_babel_s_with_1er(lang: str, start: date, end: date, skeleton: str) -> None:
    ours = format_interval(start, end, skeleton, lang)
    assert ours.replace("1er", "1") == babel_interval(start, end, skeleton, locale=lang)
    # The first of a month says "1er" wherever it is shown (two dates that read alike are shown once).
    shown = (start, end) if "\u2013" in ours else (start,)
    assert ours.count("1er") == sum(day.day == 1 for day in shown)


@pytest.mark.parametrize("lang", ["en", "en_GB", "es", "de", "pt_BR"])
@pytest.mark.parametrize("fmt", ["short", "medium", "long", "full", "d MMMM y"])
def test_other_languages_are_babel_s_own(lang: str, fmt: str) -> None:
    for day in (FIRST, SECOND):
        assert format_date(day, fmt, lang) == babel_date(day, fmt, locale=lang)
    when = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert format_datetime(when, "medium", lang) == babel_datetime(when, "medium", locale=lang)
    assert format_interval(FIRST, FIRST + timedelta(days=6), "yMMMd", lang) == babel_interval(
        FIRST, FIRST + timedelta(days=6), "yMMMd", locale=lang
    )
    assert format_date(FIRST, "long", "en") == "December 1, 2026"


@pytest.mark.parametrize("fmt", ["short", "medium", "long", "full", "d MMM y HH:mm"])
def test_french_date_times(fmt: str) -> None:
    first = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    ours = format_datetime(first, fmt, "fr")
    assert ours.replace("1er", "1") == babel_datetime(first, fmt, locale="fr")  # the rest is Babel's
    assert ("1er" in ours) is (fmt != "short")
    second = first + timedelta(days=1)
    assert format_datetime(second, fmt, "fr") == babel_datetime(second, fmt, locale="fr")


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        (date(2026, 12, 1), date(2026, 12, 7), "1er–7 déc. 2026"),
        (date(2026, 11, 26), date(2026, 12, 1), "26 nov.\u2009–\u20091er déc. 2026"),
        (date(2026, 12, 28), date(2027, 1, 1), "28 déc. 2026\u2009–\u20091er janv. 2027"),
        (date(2026, 11, 1), date(2026, 12, 1), "1er nov.\u2009–\u20091er déc. 2026"),
        (date(2026, 12, 1), date(2026, 12, 1), "1er déc. 2026"),
        (date(2026, 12, 2), date(2026, 12, 8), "2–8 déc. 2026"),
    ],
)
def test_french_intervals(start: date, end: date, label: str) -> None:
    assert format_interval(start, end, "yMMMd", "fr") == label


def test_window_labels() -> None:
    first_week = week("2026-W49", PARIS, "fr")  # Monday 30 November to Sunday 6 December
    assert first_week.label == "30 nov.\u2009–\u20096 déc. 2026"
    assert week("2021-W09", PARIS, "fr").label == "1er–7 mars 2021"
    assert week("2021-W09", PARIS, "en").label == "Mar 1\u2009–\u20097, 2021"
    assert since("2026-12-01", "2026-12-01", PARIS, "fr", now=NOW).label == "1er décembre 2026"
    assert since("2026-12-02", "2026-12-02", PARIS, "fr", now=NOW).label == "2 décembre 2026"
    assert since("2026-12-01", "2026-12-01", PARIS, "en", now=NOW).label == "December 1, 2026"
    assert month("2026-12", PARIS, "fr").label == "décembre 2026"  # no day shown, no "1er"
    english = since("2026-12-01", "2026-12-09", PARIS, "en", now=NOW)
    assert in_language(english, "fr").label == "1er–9 déc. 2026"
    assert in_language(since("2026-12-01", "2026-12-01", PARIS, "en", now=NOW), "fr").label == (
        "1er décembre 2026"
    )
    assert in_language(week("2021-W09", PARIS, "en"), "fr").label == "1er–7 mars 2021"


# ---- through a build ----


def first_of_march(ws: Path, lang: str, title: str) -> None:
    write_item(
        ws / "items",
        f"{lang}-first.md",
        f"---\ntitle: {title}\ndate: 2021-03-01\ncategory: News\nlang: {lang}\nsummary: S.\n---\n",
    )
    write_item(
        ws / "items",
        f"{lang}-second.md",
        f"---\ntitle: {title} 2\ndate: 2021-03-02\ncategory: News\nlang: {lang}\nsummary: S.\n---\n",
    )


def read(folder: Path) -> tuple[dict[str, Any], str, str]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    html = (folder / "digest.html").read_text(encoding="utf-8")
    return manifest, html, (folder / "digest.txt").read_text(encoding="utf-8")


def test_a_french_digest_says_1er_everywhere_and_the_english_one_is_unchanged(
    workspace: Path, run: Run
) -> None:
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[languages.fr]\ntitle = "Actualités"\nsubject = "{{ title }} : {{ window.label }}"\n')
    first_of_march(workspace, "fr", "Une nouvelle")
    first_of_march(workspace, "en", "A story")
    result = run("build", "--week", "2021-W09")
    assert result.exit_code == 0, result.stderr
    top = workspace / "out" / "2021-W09"
    manifest, html, text = read(top / "fr")
    assert manifest["subject"] == "Actualités : 1er–7 mars 2021"
    assert text.startswith("Actualités : 1er–7 mars 2021\n")
    assert "1er mars 2021" in html and "2 mars 2021" in html and "1 mars 2021" not in html
    assert "1er mars 2021" in text and "2 mars 2021" in text and "1 mars 2021" not in text
    manifest, html, text = read(top)
    assert manifest["subject"] == "Co-operative News Digest: Mar 1 – 7, 2021"  # a subject's spaces are plain
    assert "March 1, 2021" in html and "March 1, 2021" in text and "1er" not in html + text


def test_the_archive_of_a_french_workspace_says_1er(workspace: Path, run: Run) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('language = "en"', 'language = "fr"'))
    first_of_march(workspace, "fr", "Une nouvelle")
    result = run("build", "--since", "2021-03-01", "--until", "2021-03-01")
    assert result.exit_code == 0, result.stderr
    manifest, html, _text = read(workspace / "out" / "2021-03-01_2021-03-01")
    assert manifest["window"]["label"] == "1er mars 2021"
    assert "1er mars 2021" in html
    assert manifest["subject"].endswith(": 1er mars 2021")
    page = (workspace / "out" / "index.html").read_text(encoding="utf-8")
    assert "1er mars 2021" in page
