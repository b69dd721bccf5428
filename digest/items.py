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
in the cache folder (digest/index.py) and parses only the files that changed since the last scan and those
whose date falls inside the window: no item inside a window is missed, whatever its file is called.
"""

from __future__ import annotations

import difflib
import marshal
import os
import re
import sys
import threading
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import frontmatter
import yaml

from digest.config import Config
from digest.errors import ItemError
from digest.fsutil import shown
from digest.index import Index
from digest.words import slugify

SUFFIXES = (".md", ".markdown")
REQUIRED = ("title", "date", "category", "summary")
OPTIONAL = ("url", "image", "image_alt", "author", "tags", "draft")

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


def _front_matter(fm: str) -> tuple[dict[str, Any], dict[str, int]]:
    """YAML front matter -> (fields, line of each field). Values are built one field at a time, so that a
    value YAML cannot build (`date: 2021-02-30`) and a field given twice are reported at their line."""
    loader = _Loader(fm)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            why = " ".join(str(x) for x in (err.context, err.problem) if x)
            raise _Bad(mark.line + 1 if mark else 1, f"malformed front matter: {why}") from None
        except yaml.YAMLError as err:
            raise _Bad(1, f"malformed front matter: {err}") from None
        if not isinstance(node, yaml.MappingNode):
            raise _Bad(2, "front matter must be 'field: value' lines")
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Bad(line, "front matter must be 'field: value' lines")
            key = str(key_node.value)
            if key in lines:
                raise _Bad(line, f"field {key!r} is given twice (also on line {lines[key]})")
            try:
                data[key] = loader.construct_object(value_node, deep=True)
            except (ValueError, OverflowError, yaml.YAMLError) as err:
                why = str(getattr(err, "problem", None) or err)
                raise _Bad(
                    value_node.start_mark.line + 1, f"{key}: cannot read {value_node.value!r}: {why}"
                ) from None
            lines[key] = line
        return data, lines
    finally:
        loader.dispose()


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
    data, lines = _front_matter(fm)
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


def iter_item_files(
    items_dir: Path, *, known_dirs: dict[str, int], since_ns: int, dirs: dict[str, int]
) -> Iterator[tuple[str, str, bool]]:
    """(key, path, changed) of every item file below items_dir, recursively, in no particular order.

    The key is the path relative to items_dir with "/" separators; names starting with "." or "_" are
    skipped. `changed` is true when the file's ctime is `since_ns` or later, or when it lies in a folder
    the index does not know under that name and inode (a folder moved in, renamed or replaced keeps the
    old ctimes of the files inside it). `dirs` receives every folder's key and inode, for the next scan.
    Plain strings and os.scandir, not pathlib: this runs once per file of a 100,000-file archive.
    """
    root = str(items_dir)
    cut = len(root) + 1
    root_inode = os.stat(root).st_ino
    dirs[""] = root_inode
    stack = [(root, known_dirs.get("") != root_inode)]
    while stack:
        folder, new = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name[0] in "._":
                    continue
                # The common case first: an item file (d_type tells is_file without a system call).
                if name.endswith(SUFFIXES) and entry.is_file():
                    key = entry.path[cut:]
                    if os.sep != "/":
                        key = key.replace(os.sep, "/")
                    yield key, entry.path, new or entry.stat().st_ctime_ns >= since_ns
                elif entry.is_dir():
                    key = entry.path[cut:].replace(os.sep, "/")
                    inode = entry.stat().st_ino
                    dirs[key] = inode
                    stack.append((entry.path, new or known_dirs.get(key) != inode))


@dataclass(frozen=True)
class Scan:
    """What scan() found: the items asked for, and how much work the index saved."""

    items: list[Item]
    total_files: int
    parsed_files: int
    warnings: tuple[str, ...] = ()  # bad files outside the window: reported, not fatal


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

    Raises ItemError listing every bad file in the whole folder, whatever the window. With a cache_dir,
    an index there (see digest/index.py) spares parsing the files outside the window that did not change.
    """
    scanner = Scanner(items_dir, tz=tz, cache_dir=cache_dir, relative_to=relative_to)
    scanner.start_walk(background=False)
    return scanner.finish(start, end)


@dataclass(frozen=True)
class Walk:
    """What listing the items folder found: how many item files, the ones to parse, and the folders."""

    count: int
    changed: list[tuple[str, str]]
    dirs: dict[str, int]


class Scanner:
    """scan() in steps, so that a build can render from the index's idea of the window while the folder is
    listed in a second process, then check that idea (`finish`) before it writes anything."""

    def __init__(
        self, items_dir: Path, *, tz: ZoneInfo, cache_dir: Path | None, relative_to: Path | None
    ) -> None:
        if not items_dir.is_dir():
            raise ItemError([f"{items_dir}: items folder not found"])
        self.items_dir, self.tz = items_dir, tz
        self.shown = relative_to or items_dir.parent
        self.started = clock.time_ns()
        self.index = (
            Index(cache_dir / "items-index.sqlite", items_dir=items_dir, tz=tz.key) if cache_dir else None
        )
        self.built = self.index.built_ns if self.index else 0
        self.retry = self.index.bad_keys() if self.index and self.built else set()
        self.known_dirs = self.index.known_dirs() if self.index and self.built else {}
        self.parsed: dict[str, Item] = {}
        self.problems: dict[str, str] = {}
        self.gone: list[str] = []
        self.reads = 0  # files parsed (a changed file that the window also holds counts twice)
        self._walk: Callable[[], Walk] = self._walk_here

    def _walk_here(self) -> Walk:
        dirs: dict[str, int] = {}
        count = 0
        changed = []
        for key, path, is_new in iter_item_files(
            self.items_dir, known_dirs=self.known_dirs, since_ns=self.built, dirs=dirs
        ):
            count += 1
            if is_new or key in self.retry:
                changed.append((key, path))
        return Walk(count, changed, dirs)

    def start_walk(self, *, background: bool) -> None:
        """List the folder now, or (background=True, on Linux) in a forked process, joined by finish()."""
        if background and self.built and sys.platform == "linux" and threading.active_count() == 1:
            self._walk = _in_child(self._walk_here, fallback=self._walk_here)
        else:
            walk = self._walk_here()
            self._walk = lambda: walk

    @property
    def warm(self) -> bool:
        """Whether the index knows the folder, so that speculate() means something."""
        return bool(self.index and self.built)

    def speculate(self, start: datetime | None, end: datetime | None) -> list[Item]:
        """The window's items as the index has them (files changed since are only known after finish)."""
        for key in self._in_window(start, end):
            if (
                key not in self.parsed
                and key not in self.problems
                and not self._load(key, str(self.items_dir / key))
            ):
                self.gone.append(key)
        return [self.parsed[k] for k in sorted(self.parsed) if _wanted(self.parsed[k], start, end)]

    def _in_window(self, start: datetime | None, end: datetime | None) -> list[str]:
        if not (self.index and self.built):
            return []
        return self.index.in_window(start.timestamp() if start else None, end.timestamp() if end else None)

    def _display(self, key: str) -> str:
        path = self.items_dir / key
        try:
            return str(path.relative_to(self.shown))
        except ValueError:
            return str(path)

    def _load(self, key: str, path: str) -> bool:
        """Parse one file into parsed/problems; False when the file is no longer there."""
        self.parsed.pop(key, None)
        self.problems.pop(key, None)
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            return False
        except OSError as err:
            self.problems[key] = f"{self._display(key)}:1: cannot read: {err.strerror}"
            return True
        self.reads += 1
        try:
            self.parsed[key] = parse_item(Path(key), raw, self.tz)
        except _Bad as bad:
            self.problems[key] = f"{self._display(key)}:{bad.line}: {bad.why}"
        return True

    def finish(self, start: datetime | None, end: datetime | None) -> Scan:
        """Join the listing, parse what changed, check slugs, update the index: the true window."""
        walk = self._walk()
        parsed, problems, display, index = self.parsed, self.problems, self._display, self.index
        for key, path in walk.changed:
            if not self._load(key, path):
                self.gone.append(key)
        fresh = {key for key, _ in walk.changed if key in parsed}  # the index learns these
        if index and self.built:
            # Unchanged files the index places inside the window: the build needs their full text.
            for key in self._in_window(start, end):
                if (
                    key not in parsed
                    and key not in problems
                    and not self._load(key, str(self.items_dir / key))
                ):
                    self.gone.append(key)  # deleted or renamed since: the new name was parsed as changed
            _check_slugs_against_index(index, fresh, parsed, problems, self.gone, self.items_dir, display)
        _check_slugs(parsed, problems, display)
        if index:
            if index.count() != walk.count - len(problems):
                present = {
                    key for key, _, _ in iter_item_files(self.items_dir, known_dirs={}, since_ns=0, dirs={})
                }
                self.gone.extend(k for k in index.all_keys() if k not in present)
            index.update(
                good=[
                    (k, parsed[k].when.timestamp(), parsed[k].draft, parsed[k].slug)
                    for k in fresh
                    if k not in problems
                ],
                bad=list(problems),
                gone=[*self.gone, *problems],
                scan_started_ns=self.started,
                dirs=walk.dirs if walk.dirs != self.known_dirs else None,
            )
            index.close()
        if problems:
            raise ItemError([problems[k] for k in sorted(problems, key=display)])
        items = [parsed[k] for k in sorted(parsed) if _wanted(parsed[k], start, end)]
        return Scan(items=items, total_files=walk.count, parsed_files=self.reads)


def _in_child(work: Callable[[], Walk], *, fallback: Callable[[], Walk]) -> Callable[[], Walk]:
    """Run `work` in a forked process (its system calls then overlap the parent's rendering); the returned
    function waits for the result. Any failure of the child means `fallback` runs here instead."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return fallback
    if pid == 0:  # the child: list the folder, send the result, leave without any clean-up of the parent's
        status = 1
        try:
            os.close(read_end)
            walk = work()
            data = marshal.dumps((walk.count, walk.changed, walk.dirs))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)

    def join() -> Walk:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not data:
            return fallback()
        count, changed, dirs = marshal.loads(data)  # noqa: S302 - our own child's output, through a pipe
        return Walk(count, [tuple(c) for c in changed], dirs)

    return join


def _wanted(item: Item, start: datetime | None, end: datetime | None) -> bool:
    return not item.draft and (start is None or item.when >= start) and (end is None or item.when < end)


def _check_slugs(parsed: dict[str, Item], problems: dict[str, str], display: Any) -> None:
    """Two files parsed in this run with the same file name (in different folders)."""
    owners: dict[str, str] = {}
    for key in sorted(parsed, key=display):
        slug = parsed[key].slug
        if slug in owners:
            problems[key] = (
                f"{display(key)}:1: duplicate slug {slug!r}: {display(owners[slug])} has the same file name"
            )
        else:
            owners[slug] = key


def _check_slugs_against_index(
    index: Index,
    fresh: set[str],
    parsed: dict[str, Item],
    problems: dict[str, str],
    gone: list[str],
    items_dir: Path,
    display: Any,
) -> None:
    """A changed file whose slug an unchanged, indexed file already has."""
    for key in sorted(fresh, key=display):
        slug = parsed[key].slug
        for other in index.keys_with_slug(slug):
            if other == key or other in parsed or other in problems:
                continue  # parsed in this run: _check_slugs compares those
            if not (items_dir / other).exists():
                gone.append(other)
                continue
            first, second = sorted((key, other), key=display)
            problems[second] = (
                f"{display(second)}:1: duplicate slug {slug!r}: {display(first)} has the same file name"
            )


def new_item(
    config: Config, *, title: str, category: str, summary: str, url: str | None, today: date
) -> Path:
    """Create an item file dated today in the items folder, ready to edit; its path."""
    title, category = title.strip(), category.strip()
    if not title or "\n" in title or "\r" in title:
        raise ItemError(["the title must be one non-empty line"])
    if not category or "\n" in category or "\r" in category:
        raise ItemError(["--category must be one non-empty line"])
    if url:
        try:
            check_url(url, what="--url")
        except ValueError as err:
            raise ItemError([str(err)]) from None
    path = config.paths.items / f"{today.isoformat()}-{slugify(title, max_len=60)}.md"
    fields: dict[str, Any] = {"title": title, "date": today, "category": category}
    if url:
        fields["url"] = url
    fields["summary"] = summary.strip()
    text = "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=100) + "---\n"
    try:
        config.paths.items.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise ItemError([f"{shown(path)} already exists"]) from None
    except OSError as err:
        raise ItemError([f"{shown(path)}: cannot write: {err.strerror}"]) from err
    return path
