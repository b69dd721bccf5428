"""The digest's words in its language: gettext catalogs (the workspace's in front of the packaged ones) and
dates (Babel's, but for French's "1er", the first of a month).

The packaged catalogs are compiled (digest/locale/<lang>/LC_MESSAGES/digest.mo, made with Babel's commands).
A workspace's own are the .po files its team edits (locale/<lang>/LC_MESSAGES/digest.po), read by
digest/po.py as they are: no compile step.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.dates import format_interval as _babel_interval
from babel.dates import match_skeleton, tokenize_pattern, untokenize_pattern

from digest.words import has_markup

if TYPE_CHECKING:
    from babel.support import NullTranslations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "digest"
_STANDARD = ("short", "medium", "long", "full")

# ---- dates ----


def _french(locale: Locale | str) -> bool:
    return Locale.parse(locale).language == "fr"


def _in_words(pattern: str) -> bool:
    """Whether a pattern writes its day in words, where French says "1er" ("1er avril", "jeudi 1er"): it has
    a month's name (M or L, 3 letters or more) or a weekday's (E; c or e, 3 or more). A day in figures,
    "1/4/2021" or a bare "d", stays a number ("1er/4/2021" is no French)."""
    fields = [v for kind, v in tokenize_pattern(pattern) if kind == "field" and isinstance(v, tuple)]
    return any(
        (letter in "ML" and width >= 3) or letter == "E" or (letter in "ce" and width >= 3)
        for letter, width in fields
    )


def _first_of_month(pattern: str, words: bool | None = None) -> str:
    """A date pattern that writes the day as "1er", French's ordinal for the first of a month, when the
    pattern (or `words`: the whole interval it is half of) writes the day in words; only the plain day
    field "d" ("dd", "01", is a number in a table, not the day of a sentence)."""
    if not (_in_words(pattern) if words is None else words):
        return pattern
    tokens: list[tuple[str, Any]] = []
    for token in tokenize_pattern(pattern):
        tokens.append(token)
        if token == ("field", ("d", 1)):
            tokens.append(("chars", "er"))
    return untokenize_pattern(tokens)


def format_date(day: date | datetime, format: str = "medium", locale: Locale | str = "en") -> str:
    """Babel's format_date; in French the first of a month is "1er" ("1er décembre 2026", not in
    "01/12/2026" or "1/12/2026")."""
    if day.day != 1 or not _french(locale):
        return _babel_date(day, format, locale=locale)
    pattern = Locale.parse(locale).date_formats[format].pattern if format in _STANDARD else format
    return _babel_date(day, _first_of_month(pattern), locale=locale)


def format_datetime(when: datetime, format: str = "medium", locale: Locale | str = "en") -> str:
    """Babel's format_datetime; in French the first of a month is "1er" when the day is in words."""
    if when.day != 1 or not _french(locale):
        return _babel_datetime(when, format, locale=locale)
    pattern = format
    if format in _STANDARD:
        loc = Locale.parse(locale)
        # The date-time pattern with the date's and time's patterns in it (Babel fills in formatted text).
        pattern = (
            str(loc.datetime_formats[format])
            .replace("{0}", loc.time_formats[format].pattern)
            .replace("{1}", loc.date_formats[format].pattern)
        )
    return _babel_datetime(when, _first_of_month(pattern), locale=locale)


def format_interval(start: date, end: date, skeleton: str, locale: Locale | str = "en") -> str:
    """Babel's format_interval of two dates; in French a first of a month is "1er" ("1er–7 déc. 2026")."""
    if 1 not in (start.day, end.day) or not _french(locale):
        return _babel_interval(start, end, skeleton, locale=locale)
    loc = Locale.parse(locale)
    # Babel's (and CLDR's) steps, with the day written by format_date: the skeleton, or the nearest one...
    if skeleton not in loc.interval_formats:
        skeleton = match_skeleton(skeleton, loc.interval_formats) or skeleton
    if start == end or skeleton not in loc.interval_formats:
        return _fallback_interval(start, end, skeleton, loc)
    pieces = loc.interval_formats[skeleton]
    # ... the largest field that differs picks the pattern pair ...
    for field, differs in (
        ("y", start.year != end.year),
        ("M", start.month != end.month),
        ("d", start.day != end.day),
    ):
        if differs and field in pieces:
            first, second = pieces[field]
            # Its halves are one date in two ("1er–7 mars" has its month in the second half).
            words = _in_words(first + second)
            return "".join(
                _babel_date(day, _first_of_month(half, words) if day.day == 1 else half, locale=loc)
                for half, day in ((first, start), (second, end))
            )
    # ... and where none of the pattern's fields differs, each date by the skeleton, once if they read alike.
    return _fallback_interval(start, end, skeleton, loc)


def _fallback_interval(start: date, end: date, skeleton: str, loc: Locale) -> str:
    if skeleton in loc.datetime_skeletons:
        pattern = loc.datetime_skeletons[skeleton].pattern
        first, last = format_date(start, pattern, loc), format_date(end, pattern, loc)
    else:
        first, last = format_date(start, "medium", loc), format_date(end, "medium", loc)
    if first == last:
        return first
    return str(loc.interval_formats.get(None, "{0}-{1}")).replace("{0}", first).replace("{1}", last)


# ---- catalogs ----


@functools.cache
def packaged(lang: str) -> NullTranslations:
    """The packaged catalog of a language (digest/locale/<lang>/LC_MESSAGES/digest.mo): English, French
    and Spanish ship; any other language shows the templates' English strings."""
    from babel.support import (
        NullTranslations,
        Translations,
    )  # the catalogs' modules: only a render needs them

    found = Translations.load(str(LOCALE_DIR), locales=[lang], domain=DOMAIN)
    return found if isinstance(found, Translations) else NullTranslations()


def catalog_path(folder: Path, tag: str) -> Path:
    """Where a workspace keeps a language's catalog: <folder>/<tag>/LC_MESSAGES/digest.po."""
    return folder / tag / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(lang: str, folder: Path | None = None) -> NullTranslations:
    """The words of a language: the workspace's catalogs in `folder` (the regional one first: fr_CA, then
    fr), each string they leave out looked up behind them, in the packaged catalog."""
    words = packaged(lang)
    if folder is None:
        return words
    from digest.po import Catalog, read_catalog

    parts = lang.split("_")
    for tag in ("_".join(parts[:n]) for n in range(1, len(parts) + 1)):  # fr, then fr_CA in front of it
        path = catalog_path(folder, tag)
        try:
            stat = path.stat()
        except OSError:
            continue
        words = Catalog(read_catalog(path, stat, tag), fallback=words, domain=DOMAIN)
    return words


# ---- words in HTML ----


def _as_html(original: str, translated: str, autoescape: bool) -> str:
    """A translation as it goes into a template. Where the original is text (has_markup), the translation
    is text: escaped in an HTML template like any other value, so a `"` in it cannot end an attribute it
    is put in (`alt="{{ _('Our logo') }}"`). An original with markup keeps it in its translation
    (digest/po.py refuses a workspace translation that adds a `<` or `&`)."""
    if autoescape and not has_markup(original):
        from markupsafe import escape

        return escape(translated)
    return translated


def html_gettext(words: NullTranslations) -> dict[str, Any]:
    """The gettext callables for Jinja2's i18n extension (install_gettext_callables): `words`' translations,
    as text where their originals are text (see _as_html)."""
    from jinja2 import pass_context

    @pass_context
    def gettext(ctx: Any, message: str) -> str:
        return _as_html(message, words.gettext(message), ctx.eval_ctx.autoescape)

    @pass_context
    def ngettext(ctx: Any, singular: str, plural: str, n: int) -> str:
        return _as_html(singular + plural, words.ngettext(singular, plural, n), ctx.eval_ctx.autoescape)

    @pass_context
    def pgettext(ctx: Any, context: str, message: str) -> str:
        return _as_html(message, str(words.pgettext(context, message)), ctx.eval_ctx.autoescape)

    @pass_context
    def npgettext(ctx: Any, context: str, singular: str, plural: str, n: int) -> str:
        translated = words.npgettext(context, singular, plural, n)
        return _as_html(singular + plural, translated, ctx.eval_ctx.autoescape)

    return {"gettext": gettext, "ngettext": ngettext, "pgettext": pgettext, "npgettext": npgettext}
