"""Files in items/ -> Item (frozen). Every bad file is reported, all in one run, as `path:line: why`.

An item is a Markdown file with YAML front matter:

    ---
    title: ILO COOP participates in two parallel events at CSW65
    date: 2021-03-23            # or a datetime with an offset: 2021-03-23T09:30:00+01:00
    category: News
    summary: ILO COOP Manager presented at ...
    url: https://www.ilo.org/...   # optional
    ---
    Optional Markdown body.

Large archives: parsing every front matter of 100,000 files takes many seconds, so `scan` keeps an index
(path, stat signature, date, draft flag, slug) in the cache folder and fully parses only the files that
changed since the last run or whose date falls inside the window. A file's stat signature covers its
mtime, ctime, size and inode, so an edited file is always re-read: no item inside a window is missed,
whatever the file is called.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import frontmatter
import yaml

from digest.errors import ItemError

SUFFIXES = (".md", ".markdown")
REQUIRED = ("title", "date", "category", "summary")
OPTIONAL = ("url", "image", "image_alt", "author", "tags", "draft")
INDEX_VERSION = 1

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FRONT = frontmatter.default_handlers.YAMLHandler()
_SPACES = re.compile(r"\s+")


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


class _Bad(Exception):
    def __init__(self, line: int, why: str) -> None:
        self.line, self.why = line, why


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


def _field(data: dict[str, Any], lines: dict[str, int], name: str, check: Any) -> Any:
    try:
        return check(data[name])
    except ValueError as err:
        raise _Bad(lines.get(name, 1), f"{name}: {err}") from None


def parse_item(rel: Path, raw: bytes, tz: ZoneInfo) -> Item:
    """Parse one item file's bytes; raises _Bad(line, why) on the first problem found."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise _Bad(line, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    text = text.removeprefix("\ufeff")
    if not _FRONT.detect(text):
        raise _Bad(1, "no front matter: an item file starts with a line '---'")
    try:
        fm, body = _FRONT.split(text)
    except ValueError:
        raise _Bad(1, "front matter is not closed: add a line '---' after the fields") from None
    loader = _Loader(fm)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        why = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise _Bad(line, f"malformed front matter: {why}") from None
    except yaml.YAMLError as err:
        raise _Bad(1, f"malformed front matter: {err}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise _Bad(2, "front matter must be 'field: value' lines")
    lines = {str(k.value): k.start_mark.line + 1 for k, _v in node.value if isinstance(k, yaml.ScalarNode)}
    for key in data:
        if key not in REQUIRED and key not in OPTIONAL:
            hint = difflib.get_close_matches(str(key), REQUIRED + OPTIONAL, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = ", ".join(REQUIRED + OPTIONAL)
            raise _Bad(lines.get(str(key), 1), f"unknown field {key!r}{extra}; fields are: {allowed}")
    for name in REQUIRED:
        if data.get(name) is None or data.get(name) == "":
            raise _Bad(lines.get(name, 1), f"{name}: required field is missing or empty")

    title = _field(data, lines, "title", lambda v: _text(v, multiline=False))
    when, all_day = _field(data, lines, "date", lambda v: parse_date(v, tz))
    category = _field(data, lines, "category", lambda v: _text(v, multiline=False))
    summary = _field(data, lines, "summary", lambda v: _text(v, multiline=True))

    def optional(name: str, check: Any) -> Any:
        return None if data.get(name) is None else _field(data, lines, name, check)

    url = optional("url", lambda v: check_url(_text(v, multiline=False), what="url"))
    image = optional("image", lambda v: check_url(_text(v, multiline=False), what="image"))
    image_alt = optional("image_alt", lambda v: _text(v, multiline=False))
    if image and not image_alt:
        raise _Bad(
            lines["image"], "image: needs an image_alt text describing it (screen readers, images off)"
        )
    author = optional("author", lambda v: _text(v, multiline=False))
    tags = optional("tags", _tags) or ()
    draft = optional("draft", _bool) or False
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
    )


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise ValueError(f"expected a list of words, got {_kind(value)}")
    return tuple(t.strip() for t in value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_kind(value)}")
    return value


def slug_of(rel: Path) -> str:
    """The item's slug: its file name without the extension."""
    return rel.name.rsplit(".", 1)[0]


def iter_item_files(items_dir: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every item file below items_dir (recursively; names starting with '.' or '_' are skipped)."""
    stack = [items_dir]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith((".", "_")):
                    continue
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.name.endswith(SUFFIXES) and entry.is_file():
                    yield Path(entry.path), entry.stat()


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


@dataclass(frozen=True)
class Scan:
    """What scan() found: the items asked for, and how much work the index saved."""

    items: list[Item]
    total_files: int
    parsed_files: int


def scan(
    items_dir: Path,
    *,
    tz: ZoneInfo,
    start: datetime | None = None,
    end: datetime | None = None,
    cache_dir: Path | None = None,
    relative_to: Path | None = None,
) -> Scan:
    """Items whose date is in [start, end) (all when no bounds); drafts are left out.

    Raises ItemError listing every bad file in the whole folder, whatever the window.
    """
    if not items_dir.is_dir():
        raise ItemError([f"{items_dir}: items folder not found"])
    shown = relative_to or items_dir.parent
    index = _read_index(cache_dir, items_dir)
    new_index: dict[str, list[Any]] = {}
    problems: list[str] = []
    items: list[Item] = []
    slugs: dict[str, str] = {}
    total = parsed = 0

    def display(path: Path) -> str:
        try:
            return str(path.relative_to(shown))
        except ValueError:
            return str(path)

    for path, st in iter_item_files(items_dir):
        total += 1
        rel = path.relative_to(items_dir)
        key = rel.as_posix()
        sig = _signature(st)
        cached = index.get(key)
        item: Item | None = None
        if cached is not None and cached[0] == sig:
            raw_date, draft, slug = cached[1], cached[2], cached[3]
            when, _ = parse_date(raw_date, tz)
            wanted = not draft and (start is None or when >= start) and (end is None or when < end)
            if wanted:
                item = _load(path, rel, tz, problems, display)
                parsed += 1
                if item is None:
                    continue
        else:
            item = _load(path, rel, tz, problems, display)
            parsed += 1
            if item is None:
                continue
            raw_date = item.when.isoformat() if not item.all_day else item.when.date().isoformat()
            draft, slug = item.draft, item.slug
            wanted = not draft and (start is None or item.when >= start) and (end is None or item.when < end)
        new_index[key] = [sig, raw_date, draft, slug]
        if slug in slugs:
            problems.append(
                f"{display(path)}:1: duplicate slug {slug!r}: {slugs[slug]} has the same file name"
            )
        else:
            slugs[slug] = display(path)
        if wanted and item is not None:
            items.append(item)
    if problems:
        raise ItemError(problems)
    if cache_dir is not None and new_index != index:
        _write_index(cache_dir, items_dir, new_index)
    return Scan(items=items, total_files=total, parsed_files=parsed)


def _load(path: Path, rel: Path, tz: ZoneInfo, problems: list[str], display: Any) -> Item | None:
    try:
        return parse_item(rel, path.read_bytes(), tz)
    except _Bad as bad:
        problems.append(f"{display(path)}:{bad.line}: {bad.why}")
    except OSError as err:
        problems.append(f"{display(path)}:1: cannot read: {err.strerror}")
    return None


def _index_path(cache_dir: Path, items_dir: Path) -> Path:
    tag = hashlib.sha256(str(items_dir.resolve()).encode()).hexdigest()[:12]
    return cache_dir / f"items-index-{tag}.json"


def _read_index(cache_dir: Path | None, items_dir: Path) -> dict[str, list[Any]]:
    if cache_dir is None:
        return {}
    try:
        data = json.loads(_index_path(cache_dir, items_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no index yet, or a damaged one: every file is parsed again
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        return {}
    entries = data.get("files")
    return entries if isinstance(entries, dict) else {}


def _write_index(cache_dir: Path, items_dir: Path, entries: dict[str, list[Any]]) -> None:
    """Best effort: the index is only a speed-up, so a read-only cache folder is not an error."""
    target = _index_path(cache_dir, items_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".index-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": INDEX_VERSION, "files": entries}, f, separators=(",", ":"))
        os.replace(tmp, target)
    except OSError:
        pass
