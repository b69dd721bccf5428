"""One item file -> Item (frozen), or BadItem(line, why) saying what is wrong; `new_item` for `digest new`.

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
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from digest.config import Config
from digest.errors import ItemError
from digest.fsutil import shown
from digest.words import slugify

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
    """An item file that cannot be used: the line and the reason, and its date and when it is due (see
    Item.due) when that much is readable (a scan then knows whether the file belongs to its window)."""

    def __init__(self, line: int, why: str, *, when: datetime | None = None) -> None:
        super().__init__(f"{line}: {why}")
        self.line, self.why, self.when, self.due = line, why, when, when


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
    return "nothing" if value is None else names.get(type(value), type(value).__name__)


def _text(value: Any, *, multiline: bool) -> str:
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


def _front_matter(fm: str) -> tuple[dict[str, Any], dict[str, int], BadItem | None]:
    """YAML front matter -> (fields, line of each field, first problem). Values are built one field at a
    time, so that a value YAML cannot build (`date: 2021-02-30`) and a field given twice are reported at
    their line; the fields after such a problem are still read (a draft's date, any item's date)."""
    yaml, safe_loader, _ = _parsers()
    loader = safe_loader(fm)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            why = " ".join(str(x) for x in (err.context, err.problem) if x)
            raise BadItem(mark.line + 1 if mark else 1, f"malformed front matter: {why}") from None
        except yaml.YAMLError as err:
            raise BadItem(1, f"malformed front matter: {err}") from None
        if not isinstance(node, yaml.MappingNode):
            raise BadItem(2, "front matter must be 'field: value' lines")
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        first: BadItem | None = None
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                first = first or BadItem(line, "front matter must be 'field: value' lines")
                continue
            key = str(key_node.value)
            if key in lines:
                first = first or BadItem(line, f"field {key!r} is given twice (also on line {lines[key]})")
                data.pop(key, None)  # which of the two was meant is unknown: neither is read
                continue
            lines[key] = line
            try:
                data[key] = loader.construct_object(value_node, deep=True)
            except (ValueError, OverflowError, yaml.YAMLError) as err:
                why = str(getattr(err, "problem", None) or err)
                where = value_node.start_mark.line + 1
                first = first or BadItem(where, f"{key}: cannot read {value_node.value!r}: {why}")
        return data, lines, first
    finally:
        loader.dispose()


def _field(data: dict[str, Any], lines: dict[str, int], name: str, check: Any) -> Any:
    try:
        return check(data[name])
    except ValueError as err:
        raise BadItem(lines.get(name, 1), f"{name}: {err}") from None


def parse_item(rel: Path, raw: bytes, tz: ZoneInfo) -> Item:
    """Parse one item file's bytes; raises BadItem(line, why, when=date if readable) on the first problem."""
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
    data, lines, problem = _front_matter(fm)
    try:
        if data.get("draft") is True:
            if problem and _readable_date(data, tz) is None:
                raise problem  # the date itself is what YAML could not read
            return _draft(rel, data, lines, tz)
        if problem:
            raise problem
        return _item(rel, data, lines, body, tz)
    except BadItem as bad:
        bad.when = bad.due = _readable_date(data, tz)
        with contextlib.suppress(KeyError, ValueError):  # an embargo, when it can be read, may come later
            bad.due = max(bad.when, parse_date(data["publish_after"], tz)[0]) if bad.when else None
        raise


def _readable_date(data: dict[str, Any], tz: ZoneInfo) -> datetime | None:
    """The item's date when the file gives a valid one, whatever else is wrong with it."""
    try:
        return parse_date(data["date"], tz)[0]
    except (KeyError, ValueError):
        return None


def _date(data: dict[str, Any], lines: dict[str, int], tz: ZoneInfo) -> tuple[datetime, bool]:
    if data.get("date") is None or data.get("date") == "":
        raise BadItem(lines.get("date", 1), "date: required field is missing or empty")
    return _field(data, lines, "date", lambda v: parse_date(v, tz))  # type: ignore[no-any-return]


def _draft(rel: Path, data: dict[str, Any], lines: dict[str, int], tz: ZoneInfo) -> Item:
    """A draft is never selected: only its date is checked (the index files it by date); the rest is kept
    where it reads as text, so that a draft may be unfinished."""
    when, all_day = _date(data, lines, tz)

    def loose(name: str) -> str:
        try:
            return _text(data.get(name), multiline=name == "summary")
        except ValueError:
            return ""

    return Item(
        slug=slug_of(rel),
        source=rel,
        title=loose("title"),
        when=when,
        all_day=all_day,
        category=loose("category"),
        summary=loose("summary"),
        draft=True,
    )


def _item(rel: Path, data: dict[str, Any], lines: dict[str, int], body: str, tz: ZoneInfo) -> Item:
    """Every field of a published item, checked."""
    for key in data:
        if key not in REQUIRED and key not in OPTIONAL:
            hint = difflib.get_close_matches(str(key), REQUIRED + OPTIONAL, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = ", ".join(REQUIRED + OPTIONAL)
            raise BadItem(lines.get(str(key), 1), f"unknown field {key!r}{extra}; fields are: {allowed}")
    for name in REQUIRED:
        if data.get(name) is None or data.get(name) == "":
            raise BadItem(lines.get(name, 1), f"{name}: required field is missing or empty")

    title = _field(data, lines, "title", lambda v: _text(v, multiline=False))
    when, all_day = _date(data, lines, tz)
    category = _field(data, lines, "category", lambda v: _text(v, multiline=False))
    summary = _field(data, lines, "summary", lambda v: _text(v, multiline=True))

    def optional(name: str, check: Any) -> Any:
        return None if data.get(name) is None else _field(data, lines, name, check)

    url = optional("url", lambda v: check_url(_text(v, multiline=False), what="the address"))
    image = optional("image", lambda v: check_url(_text(v, multiline=False), what="the address"))
    image_alt = optional("image_alt", lambda v: _text(v, multiline=False))
    if image and not image_alt:
        raise BadItem(
            lines["image"], "image: needs an image_alt text describing it (screen readers, images off)"
        )
    author = optional("author", lambda v: _text(v, multiline=False))
    tags = optional("tags", _tags) or ()
    draft = optional("draft", _bool) or False
    pinned = optional("pinned", _bool) or False
    publish_after = optional("publish_after", lambda v: parse_date(v, tz)[0])
    lang = optional("lang", _lang)
    return Item(
        slug=slug_of(rel),
        source=rel,
        title=title,
        when=when,
        all_day=all_day,
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


def new_item(
    config: Config, *, title: str, category: str, summary: str, url: str | None, today: date
) -> Path:
    """Create an item file dated today in the items folder, ready to edit; its path."""
    title = _new_field(title, "the title", multiline=False)
    category = _new_field(category, "--category", multiline=False)
    summary = _new_field(summary, "--summary", multiline=True) if summary.strip() else ""
    if url:
        try:
            check_url(url, what="--url")
        except ValueError as err:
            raise ItemError([str(err)]) from None
    path = config.paths.items / f"{today.isoformat()}-{slugify(title, max_len=60)}.md"
    fields: dict[str, Any] = {"title": title, "date": today, "category": category}
    if url:
        fields["url"] = url
    fields["summary"] = summary
    yaml = _parsers()[0]
    text = "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=100) + "---\n"
    try:
        config.paths.items.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # FileExistsError too: a file where the folder should be
        raise ItemError(
            [f"{shown(config.paths.items)}: cannot create the items folder: {err.strerror}"]
        ) from err
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise ItemError([f"{shown(path)} already exists"]) from None
    except OSError as err:
        raise ItemError([f"{shown(path)}: cannot write: {err.strerror}"]) from err
    return path


def _new_field(value: str, what: str, *, multiline: bool) -> str:
    """A value for `digest new`, checked as the scan will check it, so the new file is a valid item."""
    one = value.strip()
    if not multiline and (not one or "\n" in one or "\r" in one):
        raise ItemError([f"{what} must be one non-empty line"])
    try:
        return _text(value, multiline=multiline)
    except ValueError as err:
        raise ItemError([f"{what} {err}"]) from None
