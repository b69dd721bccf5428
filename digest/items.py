"""One item file -> Item (frozen), or BadItem with each (line, why) wrong in it; `digest new`: newitem.py.

An item is a Markdown file with YAML front matter:

    ---
    title: ILO COOP participates in two parallel events at CSW65
    date: 2021-03-23            # or a datetime with an offset: 2021-03-23T09:30:00+01:00
    category: News
    summary: ILO COOP Manager presented at ...
    url: https://www.ilo.org/...   # optional
    ---
    Optional Markdown body.

An item with `draft: true` is checked only for its date: it is never selected, so it may be unfinished.
Listing the folder, the index and the window are digest/scan.py's.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from digest.markdown import LIMIT, too_deep

SUFFIXES = (".md", ".markdown")
REQUIRED = ("title", "date", "category", "summary")
OPTIONAL = (
    "url",
    "image",
    "image_alt",
    "author",
    "tags",
    "draft",
    "pinned",
    "publish_after",
    "lang",
    "source_id",
    "feed",
)

_SPACES = re.compile(r"\s+")
_LINE_END = re.compile(r"\r\n?|\n")  # as markdown-it counts lines
TOO_DEEP = (
    f"quotes and lists are nested more than {LIMIT - 1} levels deep here (a quote counts one level, a list "
    "two): markdown would drop the text from here on (in a list, to the end of the body); flatten it"
)


@functools.cache
def _parsers() -> tuple[Any, Any, Any]:
    """(yaml, its safe loader, the front matter splitter), imported on first use: a build whose index
    already knows every item file (the usual case) reads no YAML, and spares their import (about 12 ms)."""
    import frontmatter
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml, loader, frontmatter.default_handlers.YAMLHandler()


@dataclass(frozen=True, kw_only=True)
class Item:
    """One news item, validated."""

    slug: str
    source: Path  # relative to the items folder
    title: str
    when: datetime  # timezone-aware; a plain date is midnight in the configured zone
    all_day: bool  # True when the file gave a plain date without a time
    category: str
    summary: str
    body: str = ""
    url: str | None = None
    image: str | None = None
    image_alt: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    draft: bool = False
    pinned: bool = False  # kept in the email when [email] fit moves items to the web version
    publish_after: datetime | None = None  # embargo: not selected by a build before this time
    lang: str | None = None  # None: the workspace's language

    @property
    def due(self) -> datetime:
        """When the item may first appear, which is what windows select by: its date, or the end of its
        embargo when that comes later (an item of March embargoed until April goes in April's digest)."""
        after = self.publish_after
        return after if after is not None and after > self.when else self.when


class BadItem(Exception):
    """An item file that cannot be used: every problem found (`more`: those after line, why) as `problems`,
    (line, why) in line order, the first also as line and why; and its date and when it is due (see
    Item.due) when that much is readable (a scan then knows whether the file belongs to its window)."""

    def __init__(
        self, line: int, why: str, *, when: datetime | None = None, more: Iterable[tuple[int, str]] = ()
    ) -> None:
        self.problems = tuple(sorted([(line, why), *more], key=lambda problem: problem[0]))
        (self.line, self.why), self.when, self.due = self.problems[0], when, when
        super().__init__("\n".join(f"{n}: {why}" for n, why in self.problems))


def check_url(value: str, *, what: str) -> str:
    """Return value when it is an absolute http(s) URL with a host; raise ValueError otherwise."""
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError(f"{what} must not contain spaces or control characters")
    bad = sorted(set(value) & set('"<>\\^`{|}'))
    if bad:
        raise ValueError(f"{what} has characters that must be percent-encoded: {' '.join(bad)}")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http:// or https:// address, got {value!r}")
    return value


def parse_date(value: Any, tz: ZoneInfo) -> tuple[datetime, bool]:
    """A YAML date value -> (aware datetime, all_day). Raises ValueError with the reason."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz), True
    elif isinstance(value, str):
        text = value.strip()
        try:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=tz), True
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"cannot read {value!r} as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+HH:MM"
            ) from None
    else:
        raise ValueError(f"expected a date like 2021-03-31, got {_kind(value)}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(
            f"the time {value!s} has no UTC offset: add one (e.g. +01:00 or Z) or give a plain date"
        )
    return dt.astimezone(tz), False


def _kind(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    if isinstance(value, str):
        return f"the text {value!r}"
    return "nothing" if value is None else names.get(type(value), type(value).__name__)


def clean_text(value: Any, *, multiline: bool) -> str:
    """A text field's value with its runs of white space made one space; ValueError saying what is wrong."""
    if not isinstance(value, str):
        hint = " (put it in quotes)" if isinstance(value, int | float | bool) else ""
        raise ValueError(f"expected text, got {_kind(value)}{hint}")
    if not multiline and ("\n" in value.strip() or "\r" in value):
        raise ValueError("must be a single line")
    control = next((c for c in value if (ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0), None)
    if control is not None:
        raise ValueError(f"has a control character (U+{ord(control):04X}): remove it")
    cleaned = _SPACES.sub(" ", value).strip()
    if not cleaned:
        raise ValueError("is empty")
    return cleaned


class _Fields:
    """A file's front matter fields, the line of each, and its problems as they are found, each with the
    field it is about ("" for none): a file's every problem is reported in one run."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.lines: dict[str, int] = {}
        self.found: list[tuple[int, str, str]] = []

    def note(self, line: int, why: str, name: str = "") -> None:
        self.found.append((line, why, name))

    def get(self, name: str, check: Any, *, required: bool = False) -> Any:
        """The field's value as check makes it; None when it is not given, or is bad (noted)."""
        value = self.data.get(name)
        if name in self.lines and name not in self.data:
            return None  # given twice, or a value YAML cannot build: noted already, once is enough
        if required and (value is None or value == ""):
            self.note(self.lines.get(name, 1), f"{name}: required field is missing or empty", name)
        elif value is not None:
            try:
                return check(value)
            except ValueError as err:
                self.note(self.lines.get(name, 1), f"{name}: {err}", name)
        return None

    def fail(self, only: str | None = None) -> None:
        """Raise BadItem with every problem noted (only: those about that field), if there is one."""
        found = [(line, why) for line, why, name in self.found if only in (None, name)]
        if found:
            raise BadItem(*found[0], more=found[1:])


def _front_matter(fm: str) -> _Fields:
    """YAML front matter -> its _Fields. Values are built one field at a time, so that a value YAML cannot
    build (`date: 2021-02-30`) and a field given twice are noted at their line, and the fields after them
    are still read. YAML that does not parse, or is not a mapping, raises BadItem at once: nothing after it
    can be read."""
    yaml, safe_loader, _ = _parsers()
    loader = safe_loader(fm)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            why = " ".join(str(x) for x in (err.context, err.problem) if x)
            if "mapping values are not allowed" in why:  # YAML's words for `title: Update: the new office`
                why += " (a value with ': ' in it needs quotes: title: \"Update: the new office\")"
            raise BadItem(mark.line + 1 if mark else 1, f"malformed front matter: {why}") from None
        except yaml.YAMLError as err:
            raise BadItem(1, f"malformed front matter: {err}") from None
        if not isinstance(node, yaml.MappingNode):
            raise BadItem(2, "front matter must be 'field: value' lines")
        fields = _Fields()
        data, lines = fields.data, fields.lines
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                fields.note(line, "front matter must be 'field: value' lines")
                continue
            key = str(key_node.value)
            if key in lines:
                fields.note(line, f"field {key!r} is given twice (also on line {lines[key]})", key)
                data.pop(key, None)  # which of the two was meant is unknown: neither is read
                continue
            lines[key] = line
            if key not in REQUIRED and key not in OPTIONAL:
                data[key] = None  # unknown: said once as such (_item), its value not read
                continue
            try:
                data[key] = loader.construct_object(value_node, deep=True)
            except (ValueError, OverflowError, yaml.YAMLError) as err:
                why = str(getattr(err, "problem", None) or err)
                where = value_node.start_mark.line + 1
                fields.note(where, f"{key}: cannot read {value_node.value!r}: {why}", key)
        return fields
    finally:
        loader.dispose()


def parse_item(rel: Path, raw: bytes, tz: ZoneInfo) -> Item:
    """Parse one item file's bytes; raises BadItem (every problem; when=date if readable) when it is bad."""
    # Bytes that are not UTF-8 and front matter that is missing or not closed stop at once: nothing after.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise BadItem(line, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    text = text.removeprefix("\ufeff")
    front = _parsers()[2]
    if not front.detect(text):
        raise BadItem(1, "no front matter: an item file starts with a line '---'")
    try:
        fm, body = front.split(text)
    except ValueError:
        raise BadItem(1, "front matter is not closed: add a line '---' after the fields") from None
    fields = _front_matter(fm)
    try:
        if fields.data.get("draft") is True:
            return _draft(rel, fields, tz)
        return _item(rel, fields, body, tz, text=text)
    except BadItem as bad:
        bad.when = bad.due = _readable_date(fields.data, tz)
        with contextlib.suppress(KeyError, ValueError):  # an embargo, when it can be read, may come later
            bad.due = max(bad.when, parse_date(fields.data["publish_after"], tz)[0]) if bad.when else None
        raise


def _readable_date(data: dict[str, Any], tz: ZoneInfo) -> datetime | None:
    """The item's date when the file gives a valid one, whatever else is wrong with it."""
    try:
        return parse_date(data["date"], tz)[0]
    except (KeyError, ValueError):
        return None


def _draft(rel: Path, fields: _Fields, tz: ZoneInfo) -> Item:
    """A draft is never selected: only its date is checked (the index files it by date); the rest is kept
    where it reads as text, so that a draft may be unfinished."""
    dated = fields.get("date", lambda v: parse_date(v, tz), required=True)
    fields.fail(only="date")

    def loose(name: str) -> str:
        try:
            return clean_text(fields.data.get(name), multiline=name == "summary")
        except ValueError:
            return ""

    return Item(
        slug=slug_of(rel),
        source=rel,
        title=loose("title"),
        when=dated[0],
        all_day=dated[1],
        category=loose("category"),
        summary=loose("summary"),
        draft=True,
    )


def _item(rel: Path, fields: _Fields, body: str, tz: ZoneInfo, *, text: str) -> Item:
    """Every field of a published item, checked: every problem is noted, then all are raised together."""
    allowed = f"; fields are: {', '.join(REQUIRED + OPTIONAL)}"  # said with the first unknown field only
    for key, line in fields.lines.items():
        if key not in REQUIRED and key not in OPTIONAL:
            hint = difflib.get_close_matches(key, REQUIRED + OPTIONAL, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            fields.note(line, f"unknown field {key!r}{extra}{allowed}", key)
            allowed = ""
    get = fields.get
    one_line = functools.partial(clean_text, multiline=False)

    def address(value: Any) -> str:
        return check_url(one_line(value), what="the address")

    title = get("title", one_line, required=True)
    dated = get("date", lambda v: parse_date(v, tz), required=True)
    category = get("category", one_line, required=True)
    summary = get("summary", lambda v: clean_text(v, multiline=True), required=True)
    url, image, image_alt = get("url", address), get("image", address), get("image_alt", one_line)
    if image and image_alt is None and "image_alt" not in {name for *_, name in fields.found}:
        why = "image: needs an image_alt text describing it (screen readers, images off)"
        fields.note(fields.lines["image"], why, "image")
    author, tags = get("author", one_line), get("tags", _tags) or ()
    draft, pinned = get("draft", _bool) or False, get("pinned", _bool) or False
    publish_after = get("publish_after", lambda v: parse_date(v, tz)[0])
    lang = get("lang", _lang)
    deep = too_deep(body.strip())
    if deep is not None:  # body is the end of text: its stripped start is at len(text) - len(body.lstrip())
        start = len(_LINE_END.findall(text, 0, len(text) - len(body.lstrip()))) + 1
        fields.note(start + deep, f"body: {TOO_DEEP}")
    fields.fail()
    return Item(
        slug=slug_of(rel),
        source=rel,
        title=title,
        when=dated[0],
        all_day=dated[1],
        category=category,
        summary=summary,
        body=body.strip(),
        url=url,
        image=image,
        image_alt=image_alt,
        author=author,
        tags=tags,
        draft=draft,
        pinned=pinned,
        publish_after=publish_after,
        lang=lang,
    )


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise ValueError(f"expected a list of words, got {_kind(value)}")
    return tuple(t.strip() for t in value)


_LANG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def _lang(value: Any) -> str:
    """A language tag (en, fr, pt-BR) Babel knows, in the form digest.toml's [languages] tables use: pt_BR."""
    if not isinstance(value, str) or not _LANG.match(value.strip()):
        raise ValueError(f"expected a language code like en, fr or pt-BR, got {value!r}")
    from digest.config.values import language  # Babel's list of languages: the build needs their names

    return language(value.strip())


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_kind(value)}")
    return value


def slug_of(rel: Path) -> str:
    """The item's slug: its file name without the extension."""
    return rel.name.rsplit(".", 1)[0]
