"""The items folder -> Scan: the window's items, every bad file reported, all in one run, as `path:line: why`.

A bad file is an error when it belongs to the window (it is due inside it: its date, or its embargo's end
when later; see Item.due) or when its date cannot be read; a bad file due outside the window is a warning
(Scan.warnings), so one unfinished item does not block every other digest. With no window at all, every
bad file is an error.

Large archives: parsing every front matter of 100,000 files takes many seconds, so a scan keeps an index
in the cache folder (digest/index.py) and parses only the files that changed since the last scan, those
that were bad, and those due inside the window: no item inside a window is missed, whatever its file is
called.
"""

from __future__ import annotations

import os
import sys
import threading
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from digest.errors import ItemError
from digest.index import Index, Stat, item_of, record_of, stat_of
from digest.items import BadItem, Item, parse_item
from digest.listing import FORK_FROM, MAX_LISTERS, Listers, Walk, iter_item_files

INDEX_NAME = "items-index.sqlite"


@dataclass(frozen=True)
class Scan:
    """What scan() found: the items asked for, and how much work the index saved."""

    items: list[Item]
    total_files: int
    parsed_files: int
    warnings: tuple[str, ...] = ()  # bad files outside the window: reported, not fatal


class _Problem(NamedTuple):
    """A bad file: each of its problems as `path:line: why`, and when readable, when it is due (which says
    whether it is in the window: see Item.due) and its date."""

    lines: tuple[str, ...]
    due: datetime | None
    dated: datetime | None


def scan(
    items_dir: Path,
    *,
    tz: ZoneInfo,
    start: datetime | None = None,
    end: datetime | None = None,
    cache_dir: Path | None = None,
    relative_to: Path | None = None,
) -> Scan:
    """Items due in [start, end) (all when no bounds; see Item.due); drafts are left out.

    Raises ItemError listing every bad file of the window, and every bad file whose date cannot be read;
    the other bad files are Scan.warnings. With a cache_dir, an index there (see digest/index.py) spares
    parsing the files outside the window that did not change.
    """
    scanner = Scanner(items_dir, tz=tz, cache_dir=cache_dir, relative_to=relative_to)
    scanner.start_walk(background=False)
    return scanner.finish(start, end)


class Scanner:
    """scan() in steps, so that a build can render from the index's idea of the window while the folder is
    listed in other processes, then check that idea (`finish`) before it writes anything."""

    def __init__(
        self, items_dir: Path, *, tz: ZoneInfo, cache_dir: Path | None, relative_to: Path | None
    ) -> None:
        if not items_dir.is_dir():
            raise ItemError([f"{items_dir}: items folder not found"])
        self.items_dir, self.tz = items_dir, tz
        self.shown = relative_to or items_dir.parent
        self.started = clock.time_ns()
        self.index = Index(cache_dir / INDEX_NAME, items_dir=items_dir, tz=tz.key) if cache_dir else None
        self.built = self.index.built_ns if self.index else 0
        self.retry = self.index.bad_keys() if self.index and self.built else set()
        self.known_dirs = self.index.known_dirs() if self.index and self.built else {}
        self.parsed: dict[str, Item] = {}
        self.problems: dict[str, _Problem] = {}
        self.gone: list[str] = []
        self.reads = 0  # files parsed (a changed file that the window also holds counts twice)
        self.unrecorded: set[str] = set()  # unchanged files parsed, as the index kept no record of them
        self.read_as: dict[str, Stat | None] = {}  # each file parsed: its stat as it was read
        self._walk: Callable[[], Walk] = self._walk_here
        self._listers: Listers | None = None

    def _walk_here(self, share: tuple[int, int] = (0, 1)) -> Walk:
        dirs: dict[str, int] = {}
        count = 0
        changed = []
        for key, path, is_new in iter_item_files(
            self.items_dir, known_dirs=self.known_dirs, since_ns=self.built, dirs=dirs, share=share
        ):
            count += 1
            if is_new or key in self.retry:
                changed.append((key, path))
        return Walk(count, changed, dirs)

    def start_walk(self, *, background: bool) -> None:
        """List the folder now, or (background=True, on Linux, for a folder the index knows to be large) in
        forked processes, one per usable processor (at most four), joined by finish()."""
        listed = self.index.listed if self.index and self.built else 0
        if background and listed >= FORK_FROM and sys.platform == "linux" and threading.active_count() == 1:
            parts = max(1, min(MAX_LISTERS, len(os.sched_getaffinity(0))))
            works = [partial(self._walk_here, (k, parts)) for k in range(parts)]
            self._listers = Listers(works, fallback=self._walk_here)
            self._walk = self._listers.join
        else:
            walk = self._walk_here()
            self._walk = lambda: walk

    def close(self) -> None:
        """Let go of what a scan that will not finish holds: its listing processes, the index."""
        if self._listers:
            self._listers.close()
        if self.index:
            self.index.close()

    @property
    def warm(self) -> bool:
        """Whether the index knows the folder, so that speculate() means something."""
        return bool(self.index and self.built)

    def speculate(self, start: datetime | None, end: datetime | None) -> list[Item]:
        """The window's items as the index has them (files changed since are only known after finish)."""
        self._recall_all(self._in_window(start, end))
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

    def _recall_all(self, keys: list[str]) -> None:
        """The files of these keys not parsed yet in this run: an unchanged one (by its ctime, as the
        listing judges) as the index recorded it, any other one parsed now."""
        todo = [k for k in keys if k not in self.parsed and k not in self.problems]
        records = self.index.records(todo) if self.index and todo else {}
        for key in todo:
            item = None
            try:
                st = os.stat(self.items_dir / key)
                # Unchanged by its ctime as the listing judges, and exactly as it was when it was read.
                if key in records and st.st_ctime_ns < self.built:
                    item = item_of(records[key], self.tz, stat_of(st))
            except OSError:
                pass  # gone or unreadable: _load says which
            if item is not None:
                self.parsed[key] = item
                continue
            if not self._load(key):
                self.gone.append(key)
            elif key in self.parsed:
                self.unrecorded.add(key)

    def _load_all(self, keys: list[str]) -> None:
        """Parse the files of these keys not parsed yet in this run; a file no longer there is gone."""
        for key in keys:
            if key not in self.parsed and key not in self.problems and not self._load(key):
                self.gone.append(key)  # deleted or renamed since: a new name is parsed as changed

    def _load(self, key: str, path: str | None = None) -> bool:
        """Parse one file into parsed/problems; False when the file is no longer there."""
        self.parsed.pop(key, None)
        self.problems.pop(key, None)
        try:
            with open(path or self.items_dir / key, "rb") as file:
                before = os.fstat(file.fileno())
                raw = file.read()
                # The stat its record keeps: none when the file changed while it was read.
                after = stat_of(os.fstat(file.fileno()))
                self.read_as[key] = after if stat_of(before) == after else None
        except FileNotFoundError:
            return False
        except OSError as err:
            why = f"{self._display(key)}:1: cannot read: {err.strerror}"
            self.problems[key] = _Problem((why,), None, None)
            return True
        self.reads += 1
        try:
            self.parsed[key] = parse_item(Path(key), raw, self.tz)
        except BadItem as bad:
            shown = self._display(key)
            lines = tuple(f"{shown}:{line}: {why}" for line, why in bad.problems)
            self.problems[key] = _Problem(lines, bad.due, bad.when)
        return True

    def finish(self, start: datetime | None, end: datetime | None) -> Scan:
        """Join the listing, parse what changed, check slugs, update the index: the true window."""
        walk = self._walk()
        parsed, problems, index = self.parsed, self.problems, self.index
        for key, path in walk.changed:
            if not self._load(key, path):
                self.gone.append(key)
        fresh = {key for key, _ in walk.changed if key in parsed}  # the index learns these
        if index and self.built:
            # Unchanged files the index places inside the window: the build needs their full text.
            self._recall_all(self._in_window(start, end))
            # Unchanged files with the slug of a changed one: parsed, so that the slug check sees both.
            for key in sorted(fresh):
                self._load_all(index.keys_with_slug(parsed[key].slug))
        self._check_slugs()
        if index:
            if index.count() != walk.count - len(problems):
                present = {
                    key for key, _, _ in iter_item_files(self.items_dir, known_dirs={}, since_ns=0, dirs={})
                }
                self.gone.extend(k for k in index.all_keys() if k not in present)
            learnt = [k for k in (fresh | self.unrecorded) if k in parsed and k not in problems]
            # Records only for the window's items: the ones a build of it again would read. Keeping one
            # for every file would make the first scan of a 100,000-file archive half as slow again and
            # its index four times as big, for months that may never be built again.
            records = {
                k: r
                for k in learnt
                if _wanted(parsed[k], start, end)
                and (st := self.read_as.get(k))
                and (r := record_of(parsed[k], self.tz, st)) is not None
            }
            index.update(
                good=[(k, parsed[k].due.timestamp(), parsed[k].draft, parsed[k].slug) for k in learnt],
                bad=list(problems),
                gone=[*self.gone, *problems],
                scan_started_ns=self.started,
                listed=walk.count,
                dirs=walk.dirs if walk.dirs != self.known_dirs else None,
                records=records,
            )
            index.close()
        errors, warnings = self._sort_problems(start, end)
        if errors:
            raise ItemError(errors)
        items = [parsed[k] for k in sorted(parsed) if _wanted(parsed[k], start, end)]
        return Scan(items=items, total_files=walk.count, parsed_files=self.reads, warnings=warnings)

    def _sort_problems(
        self, start: datetime | None, end: datetime | None
    ) -> tuple[list[str], tuple[str, ...]]:
        """(errors, warnings), one per bad file: an error lists each of the file's problems, a line each;
        a bad file due outside the window is only a warning of one line: its first problem, how many more."""
        errors, warnings = [], []
        for key in sorted(self.problems, key=self._display):
            lines, due, dated = self.problems[key]
            if due is None or dated is None or _inside(due, start, end):
                errors.append("\n".join(lines))
            else:
                day = dated.date().isoformat()
                later = f", due {due.date().isoformat()}" if due.date() != dated.date() else ""
                more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
                warnings.append(f"{lines[0]}{more} (dated {day}{later}, outside the window: left out)")
        return errors, tuple(warnings)

    def _check_slugs(self) -> None:
        """Two published items with the same file name (in different folders): the second one is bad."""
        owners: dict[str, str] = {}
        for key in sorted(self.parsed, key=self._display):
            item = self.parsed[key]
            if item.draft:
                continue  # a draft is checked only for its date
            if item.slug in owners:
                first = self._display(owners[item.slug])
                why = f"duplicate slug {item.slug!r}: {first} has the same file name"
                self.problems[key] = _Problem((f"{self._display(key)}:1: {why}",), item.due, item.when)
                del self.parsed[key]
            else:
                owners[item.slug] = key


def _inside(when: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or when >= start) and (end is None or when < end)


def _wanted(item: Item, start: datetime | None, end: datetime | None) -> bool:
    return not item.draft and _inside(item.due, start, end)
