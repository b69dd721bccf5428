"""A workspace's gettext catalog (locale/<lang>/LC_MESSAGES/digest.po) -> the translations a render uses.

Read as the team edits it (no msgfmt, no compile step) and strictly: a broken catalog is an error naming
its file and line, not a word that silently stays English. Reading 500 messages takes about 7 ms and a
workspace's catalog holds its templates' few dozen words (well under 1 ms), so there is no compiled copy
in the cache folder: each file is read once per version per process (the live preview reads it again
when it changes).
"""

from __future__ import annotations

import functools
import gettext
import os
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations

from digest.config.values import greeting_fields
from digest.errors import TemplateError
from digest.fsutil import shown
from digest.words import ENTITY, has_markup


class Catalog(Translations):
    """One workspace catalog, in front of the catalogs behind it (its fallback)."""

    def __init__(self, parsed: Po, *, fallback: NullTranslations, domain: str) -> None:
        super().__init__(fp=None, domain=domain)
        self._catalog = dict(parsed.messages)  # gettext's own lookup table: msgid or (msgid, form) -> text
        self.plural = parsed.plural
        self.add_fallback(fallback)


@dataclass(frozen=True)
class Po:
    """A .po file read: the translated messages, keyed as gettext keys them, and its plural rule."""

    messages: dict[Any, str]
    plural: Callable[[Any], int]  # n -> which of the plural forms


def read_catalog(path: Path, stat: os.stat_result, tag: str) -> Po:
    """The catalog at path (its stat says which version), for language `tag`; TemplateError if broken."""
    # A version is more than its time and size: a save of the same length in the same tick of a coarse
    # clock keeps both, but not its inode (an editor's save renames a new file over the old one) nor its
    # change time (which a save in place moves, and which no one can set back).
    version = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino, stat.st_dev)
    return _read(str(path), version, tag)


@functools.lru_cache(maxsize=32)
def _read(path: str, version: tuple[int, ...], tag: str) -> Po:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise TemplateError(f"{shown(Path(path))}: cannot read: {err.strerror}") from err
    return read_po(raw, where=shown(Path(path)), lang=tag)


_KEYWORD = re.compile(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(.*)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_PLURAL_FORMS = re.compile(r"\s*nplurals\s*=\s*(\d+)\s*;\s*plural\s*=\s*(.+?)\s*;?\s*")
_PERCENT = re.compile(r"%%|%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa])|%")
_BRACES = re.compile(r"\{(\w+)\}")  # a greeting's {name}
_FORMATTER = string.Formatter()


@dataclass
class _Entry:
    line: int
    fuzzy: bool
    context: str | None = None
    msgid: str | None = None
    plural: str | None = None
    strings: list[str] | None = None  # msgstr, or msgstr[0], msgstr[1]...


def read_po(raw: bytes, *, where: str, lang: str) -> Po:
    """Read a .po file (UTF-8) strictly: TemplateError("where:line: what is wrong") for anything gettext's
    own msgfmt would refuse, and for a translation whose placeholders the templates cannot fill. Fuzzy and
    untranslated messages are left out, as msgfmt leaves them out."""

    def fail(line: int, what: str) -> TemplateError:
        return TemplateError(f"{where}:{line}: {what}")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise fail(raw.count(b"\n", 0, err.start) + 1, "not UTF-8 text (save the catalog as UTF-8)") from None
    entries: list[_Entry] = []
    entry: _Entry | None = None
    fuzzy = False
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):  # comments, flags, and obsolete messages ("#~ msgid ...") kept by pybabel
            fuzzy = fuzzy or (s.startswith("#,") and "fuzzy" in s[2:].replace(",", " ").split())
            continue
        keyword, index, value = None, None, s
        if not s.startswith('"'):
            m = _KEYWORD.fullmatch(s)
            if not m:
                raise fail(n, f"expected msgid, msgstr, a quoted string or a # comment, not {s[:40]!r}")
            keyword, index, value = m[1], m[2], m[3]
        found = _QUOTED.fullmatch(value)
        if not found:
            raise fail(n, 'a text goes in double quotes on one line, a quote inside it as \\"')
        piece = _unescape(found[1], n, fail)
        if keyword is None:  # a continuation line: more of the last keyword's text
            if entry is None or (entry.msgid is None and entry.context is None):
                raise fail(n, "a quoted string with no msgid or msgstr before it")
            _extend(entry, piece)
        elif keyword == "msgctxt" or (keyword == "msgid" and (entry is None or entry.msgid is not None)):
            if entry is not None:
                entries.append(entry)
            entry = _Entry(n, fuzzy)
            fuzzy = False
            if keyword == "msgctxt":
                entry.context = piece
            else:
                entry.msgid = piece
        elif keyword == "msgid" and entry is not None:  # after a msgctxt
            entry.msgid = piece
        elif entry is None or entry.msgid is None:
            raise fail(n, f"{keyword} with no msgid before it")
        elif keyword == "msgid_plural":
            if entry.strings is not None or entry.plural is not None:
                raise fail(n, "msgid_plural goes right after its msgid")
            entry.plural = piece
        elif index is None:
            if entry.plural is not None:
                raise fail(n, "a message with msgid_plural has msgstr[0], msgstr[1]..., not msgstr")
            if entry.strings is not None:
                raise fail(n, "a second msgstr for one msgid")
            entry.strings = [piece]
        else:
            if entry.plural is None:
                raise fail(n, f"msgstr[{index}] is for a message with msgid_plural")
            have = len(entry.strings or [])
            if int(index) != have:
                raise fail(n, f"expected msgstr[{have}] here, not msgstr[{index}]")
            entry.strings = [*(entry.strings or []), piece]
    if entry is not None:
        entries.append(entry)
    return _compile(entries, lang, fail)


def _unescape(body: str, line: int, fail: Callable[[int, str], TemplateError]) -> str:
    def one(m: re.Match[str]) -> str:
        if m[1] not in _ESCAPES:
            raise fail(line, f"unknown escape \\{m[1]} (a backslash is written \\\\)")
        return _ESCAPES[m[1]]

    return re.sub(r"\\(.)", one, body)


def _extend(entry: _Entry, piece: str) -> None:
    if entry.strings is not None:
        entry.strings[-1] += piece
    elif entry.plural is not None:
        entry.plural += piece
    elif entry.msgid is not None:
        entry.msgid += piece
    else:
        entry.context = (entry.context or "") + piece


def _compile(entries: list[_Entry], lang: str, fail: Callable[[int, str], TemplateError]) -> Po:
    header = next((e for e in entries if e.msgid == "" and e.context is None), None)
    forms, rule, rule_line = _plural_rule(header, lang, fail)
    messages: dict[Any, str] = {}
    seen: dict[tuple[str | None, str], int] = {}
    for e in entries:
        if e.msgid is None:
            raise fail(e.line, "msgctxt with no msgid after it")
        if e.strings is None:
            raise fail(e.line, f"msgid {e.msgid!r} has no msgstr")
        if e is header:
            continue
        if (e.context, e.msgid) in seen:
            raise fail(e.line, f"{e.msgid!r} is translated twice (first on line {seen[e.context, e.msgid]})")
        seen[e.context, e.msgid] = e.line
        if e.plural is not None and len(e.strings) != forms:
            raise fail(
                e.line,
                f"{e.msgid!r} has {len(e.strings)} plural forms, the catalog's Plural-Forms "
                f"({rule_line}) says {forms}",
            )
        if e.fuzzy or not all(e.strings):
            continue  # not translated yet: the packaged catalog (or the template's English) speaks instead
        _check_placeholders(e, fail)
        _check_markup(e, fail)
        key = e.msgid if e.context is None else f"{e.context}\x04{e.msgid}"
        if e.plural is None:
            messages[key] = e.strings[0]
        else:
            messages.update({(key, i): s for i, s in enumerate(e.strings)})
    return Po(messages, rule)


def _plural_rule(
    header: _Entry | None, lang: str, fail: Callable[[int, str], TemplateError]
) -> tuple[int, Callable[[int], int], str]:
    """(number of forms, the rule, where it comes from) of the catalog's Plural-Forms header, or of the
    language's usual one (Babel's table: French has 2) when the header says none."""
    text = ""
    for line in (header.strings or [""])[0].splitlines() if header else []:
        name, _, value = line.partition(":")
        if name.strip().lower() == "plural-forms":
            text = value
    if not text:
        from babel.messages.plurals import get_plural

        usual = get_plural(lang)
        return usual.num_plurals, gettext.c2py(usual.plural_expr), f"{lang}'s usual one"
    assert header is not None  # a Plural-Forms text comes from the header
    m = _PLURAL_FORMS.fullmatch(text)
    try:
        if not m or int(m[1]) < 1:
            raise ValueError("write it as: nplurals=2; plural=(n > 1);")
        forms, rule = int(m[1]), gettext.c2py(m[2])
        _try_rule(rule, forms)
        return forms, rule, f"line {header.line}"
    except ValueError as err:
        raise fail(header.line, f"the Plural-Forms header {text.strip()!r}: {err}") from None


# The counts a rule is tried on: every rule of CLDR's languages turns on n below 1000 (n % 100, n % 1000)
# or on a million (French's "1 000 000 de"); a rule is a few comparisons: all of these take well under 1 ms.
_COUNTS = (*range(1001), 10_000, 100_000, 1_000_000, 1_000_001, 10**9)


def _try_rule(rule: Callable[[int], int], forms: int) -> None:
    """ValueError unless the rule gives a form from 0 to forms - 1 for each count: at render time a
    division by zero would be a traceback, and a form the catalog has not a word silently left English."""
    for n in _COUNTS:
        try:
            form = rule(n)
        except ArithmeticError:
            raise ValueError(f"divides by zero (n = {n})") from None
        if not 0 <= form < forms:
            raise ValueError(f"gives form {form} for n = {n}, and there are forms 0 to {forms - 1} only")


def _check_placeholders(e: _Entry, fail: Callable[[int, str], TemplateError]) -> None:
    """A translation may use only the placeholders of its original ({name} in a greeting, %(title)s in
    the templates' words, whose every text is %-formatted: a lone % would break the template)."""
    source = (e.msgid or "") + (e.plural or "")
    if _BRACES.search(source):
        _check_greeting(e, source, fail)
        return
    kinds: dict[str, set[str]] = {}
    for m in _PERCENT.finditer(source):
        if m[1]:
            kinds.setdefault(m[1], set()).add(m[2])
    for text in e.strings or []:
        for m in _PERCENT.finditer(text):
            if m[0] == "%":
                raise fail(e.line, f"a lone % in the translation of {e.msgid!r} (a percent sign is %%)")
            if m[1] and m[1] not in kinds:
                raise fail(e.line, f"the translation of {e.msgid!r} has %({m[1]})s, its original has not")
            if m[1] and m[2] not in kinds[m[1]]:
                # %(title)d for a title is a ValueError at render time, %(title)c a TypeError.
                raise fail(
                    e.line,
                    f"the translation of {e.msgid!r} has %({m[1]}){m[2]} where its original has "
                    f"%({m[1]}){min(kinds[m[1]])} (keep the letter after the name)",
                )


def _check_markup(e: _Entry, fail: Callable[[int, str], TemplateError]) -> None:
    """A translation adds no HTML its original has not. That of a text original is escaped
    (i18n.html_gettext): a bare `<` or `&` in it reads as written, a tag or an entity would show as typed.
    That of an original with markup goes into the digest's HTML as it is (Jinja's gettext marks it safe;
    only its %(values)s are escaped): it may add no `<` or `&` at all (`<img onerror=...>`). No packaged
    string has either."""
    source = (e.msgid or "") + (e.plural or "")
    markup = has_markup(source)
    for char, pattern in (("<", _TAG), ("&", ENTITY)):
        for text in e.strings or []:
            if (char in text and char not in source) if markup else pattern.search(text) is not None:
                raise fail(
                    e.line,
                    f"the translation of {e.msgid!r} has {char!r}, its original has not: a translation "
                    "may add no tag or entity, which would show as typed or go into the HTML (write the "
                    "characters themselves: é, not &eacute;)",
                )


_TAG = re.compile(r"<[A-Za-z/!?]")


def _check_greeting(e: _Entry, source: str, fail: Callable[[int, str], TemplateError]) -> None:
    """A greeting's translation ("Hello {name},") passes the check the config's own greeting passes,
    and uses only the columns its original uses (a greeting is str.format-ted with a subscriber's)."""
    names = {f for _, f, _, _ in _FORMATTER.parse(source) if f is not None}
    for text in e.strings or []:
        try:
            greeting_fields(text)
        except ValueError as err:
            raise fail(e.line, f"the translation of {e.msgid!r}: {err}") from None
        extra = sorted({f for _, f, _, _ in _FORMATTER.parse(text) if f is not None} - names)
        if extra:
            raise fail(e.line, f"the translation of {e.msgid!r} has {{{extra[0]}}}, its original has not")
