"""The items index: what `scan` remembers between runs so that a build reads only what it must.

Parsing the front matter of 100,000 files takes many seconds. The index (SQLite, in the cache folder)
keeps, for each item file that parsed, its due instant as a timestamp (its date, or its embargo's end when
later), its draft flag and its slug, plus the time the index was last brought up to date. A later scan
still lists every file and reads its status change time (ctime) — the kernel sets ctime to "now"
whenever a file is written, renamed, linked or has its times reset, and no program can set it back — so:

- a file whose ctime is older than the index (less a safety margin) is as the index describes it;
- every other file (new, edited, moved in, renamed) is parsed again, as are files that failed last time;
- so is every file in a folder that the index does not know under that name and inode: a folder moved
  in, renamed or replaced changes its own ctime, not that of the files inside it;
- the files the index places inside the window are read back from the index as they were parsed (their
  fields as JSON, checked against each file's ctime again), so that a build parses no YAML for an
  unchanged month. The parser's own files are part of what the index is made under (`parser`): a digest
  that parses differently starts a new index.

No item inside a window can be missed, whatever its file is called. The index is only a cache: when it is
missing, damaged, from another version or parser, or made under another time zone, it is rebuilt from the
files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.items import Item

VERSION = 5  # 5: `ts` is the item's due instant (its embargo's end when later than its date)
# ctime may lag the wall clock by a timer tick, and a file can change while a scan runs: anything changed
# in the last seconds before a scan started is parsed again by the next scan.
MARGIN_NS = 2_000_000_000


class Index:
    """An open items index; every method degrades to "know nothing" rather than fail the build."""

    def __init__(self, path: Path, *, items_dir: Path, tz: str) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.built_ns = 0  # 0: nothing is known, every file is parsed
        self.listed = 0  # how many item files the last scan listed (whether they parsed or not)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._prepare(str(items_dir.resolve()), tz, parser_version())
        except sqlite3.Error:
            self._reset_file()

    def _prepare(self, items_dir: str, tz: str, parser: str) -> None:
        assert self.db is not None
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        wanted = {"version": str(VERSION), "items_dir": items_dir, "tz": tz, "parser": parser}
        if any(meta.get(k) != v for k, v in wanted.items()):
            db.executescript(
                "DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS bad; DROP TABLE IF EXISTS dirs;"
                "DELETE FROM meta;"
                "CREATE TABLE files (key TEXT PRIMARY KEY, ts REAL NOT NULL, draft INTEGER NOT NULL,"
                " slug TEXT NOT NULL, item TEXT);"
                "CREATE INDEX files_ts ON files (ts); CREATE INDEX files_slug ON files (slug);"
                "CREATE TABLE bad (key TEXT PRIMARY KEY);"
                "CREATE TABLE dirs (key TEXT PRIMARY KEY, inode INTEGER NOT NULL);"
            )
            db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())
            return
        self.built_ns = int(meta.get("built_ns", "0"))
        self.listed = int(meta.get("listed", "0"))

    def _reset_file(self) -> None:
        """A damaged index file: remove it; this run parses everything and the next one starts afresh."""
        if self.db is not None:
            with suppress(sqlite3.Error):
                self.db.close()
        self.db = None
        self.built_ns = self.listed = 0
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):
                Path(f"{self.path}{suffix}").unlink()

    def bad_keys(self) -> set[str]:
        """Files that failed to parse last time: always parsed again."""
        return {k for (k,) in self._query("SELECT key FROM bad", ())}

    def known_dirs(self) -> dict[str, int]:
        """Every folder the last scan saw (key relative to the items folder, "" for itself) and its inode."""
        return {k: int(i) for k, i in self._query("SELECT key, inode FROM dirs", ())}

    def in_window(self, start: float | None, end: float | None) -> list[str]:
        """Keys of the indexed, non-draft files whose date falls in [start, end)."""
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        return [
            k
            for (k,) in self._query("SELECT key FROM files WHERE ts >= ? AND ts < ? AND NOT draft", (lo, hi))
        ]

    def due_in(self, start: float, end: float) -> list[tuple[str, float, str]]:
        """(key, due timestamp, slug) of the indexed, non-draft files due in [start, end)."""
        sql = "SELECT key, ts, slug FROM files WHERE ts >= ? AND ts < ? AND NOT draft"
        return [(str(k), float(ts), str(s)) for k, ts, s in self._query(sql, (start, end))]

    def records(self, keys: list[str]) -> dict[str, str]:
        """The parsed fields (JSON) kept for these keys, where there are any."""
        found: dict[str, str] = {}
        for at in range(0, len(keys), 500):  # SQLite's limit on the parameters of one statement
            part = keys[at : at + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT key, item FROM files WHERE key IN ({marks}) AND item IS NOT NULL"  # noqa: S608
            found.update(self._query(sql, tuple(part)))
        return found

    def keys_with_slug(self, slug: str) -> list[str]:
        """Indexed files with this slug."""
        return [k for (k,) in self._query("SELECT key FROM files WHERE slug = ?", (slug,))]

    def count(self) -> int:
        """How many files the index describes."""
        rows = self._query("SELECT COUNT(*) FROM files", ())
        return int(rows[0][0]) if rows else 0

    def all_keys(self) -> Iterator[str]:
        """Every key the index describes."""
        return (k for (k,) in self._query("SELECT key FROM files", ()))

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if self.db is None:
            return []
        try:
            with closing(self.db.execute(sql, args)) as cursor:
                return cursor.fetchall()
        except sqlite3.Error:
            self._reset_file()
            return []

    def update(
        self,
        *,
        good: Iterable[tuple[str, float, bool, str]],
        bad: Iterable[str],
        gone: Iterable[str],
        scan_started_ns: int,
        listed: int = 0,
        dirs: dict[str, int] | None = None,
        records: dict[str, str] | None = None,
    ) -> None:
        """Record what this scan parsed (with `records`: the parsed fields of some of those files), how many
        files it listed, and that the index is now current as of the scan's start."""
        if self.db is None:
            return
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            kept = records or {}
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                ((k, ts, int(d), s, kept.get(k)) for k, ts, d, s in good),
            )
            db.execute("DELETE FROM bad")
            db.executemany("INSERT OR REPLACE INTO bad VALUES (?)", ((k,) for k in bad))
            db.executemany("DELETE FROM files WHERE key = ?", ((k,) for k in gone))
            if dirs is not None:
                db.execute("DELETE FROM dirs")
                db.executemany("INSERT INTO dirs VALUES (?, ?)", dirs.items())
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('built_ns', ?), ('listed', ?)",
                (str(scan_started_ns - MARGIN_NS), str(listed)),
            )
            db.execute("COMMIT")
        except sqlite3.Error:
            self._reset_file()

    def close(self) -> None:
        """Close the database."""
        if self.db is not None:
            with suppress(sqlite3.Error):
                self.db.close()
            self.db = None


_DATES = ("when", "publish_after")


def parser_version() -> str:
    """What a parse depends on besides the file and the zone, so that records made by another parser are
    not believed: digest's version, the source of its parsing modules (hashed: an installer may give every
    file the same time), and which PyYAML, python-frontmatter, Babel and markdown-it (it judges a body's
    markdown) are installed (their files, found without importing them)."""
    import hashlib
    import importlib.util

    from digest import __version__, items, markdown, words
    from digest.config import values

    digest = hashlib.sha256()
    for module in (items, words, values, markdown):  # markdown: a body too deep is a bad item
        digest.update(Path(module.__file__ or "").read_bytes())
    theirs = []
    for name in ("yaml", "frontmatter", "babel", "markdown_it"):
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        if origin is None:
            theirs.append(f"{name}:none")
            continue
        # yaml's C loader (CSafeLoader) is a file beside its package's __init__.py, when built.
        files = sorted(p.name for p in origin.parent.glob("_yaml*")) if name == "yaml" else []
        stat = origin.stat()
        theirs.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}:{','.join(files)}")
    return " ".join([__version__, digest.hexdigest()[:16], *theirs])


Stat = tuple[int, int, int, int]  # a file's ctime, mtime (ns), size and inode: what changes when it does


def stat_of(st: os.stat_result) -> Stat:
    """What a record keeps of its file's stat."""
    return (st.st_ctime_ns, st.st_mtime_ns, st.st_size, st.st_ino)


def record_of(item: Item, tz: ZoneInfo, stat: Stat) -> str | None:
    """An item's fields as the index keeps them (JSON), with the stat of the file they were read from;
    None for an item it cannot keep exactly.

    A date is kept as its wall time and fold in the index's zone, and its instant: read back, it is the
    very same datetime (a wall time in a gap, such as midnight on a day the clocks jump at midnight, would
    not survive a trip through its offset), and a change of the zone's rules since is seen."""
    fields: dict[str, Any] = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    for name in _DATES:
        value: datetime | None = fields[name]
        if value is not None:
            if value.tzinfo is not tz:
                return None
            fields[name] = [value.replace(tzinfo=None).isoformat(), value.fold, value.timestamp()]
    fields["source"] = item.source.as_posix()
    fields["tags"] = list(item.tags)
    return json.dumps({"stat": stat, "item": fields}, ensure_ascii=False, separators=(",", ":"))


def item_of(record: str, tz: ZoneInfo, stat: Stat) -> Item | None:
    """The item a record_of() record holds, when its file's stat is still exactly `stat` (any write,
    rename, link or change of times changes the ctime, whatever the clocks say); None for a record of
    another state of the file, or one that does not make an item."""
    try:
        data = json.loads(record)
        if tuple(data["stat"]) != stat:
            return None
        fields = data["item"]
        for name in _DATES:
            if fields[name] is not None:
                wall, fold, instant = fields[name]
                value = datetime.fromisoformat(wall).replace(tzinfo=tz, fold=fold)
                if value.timestamp() != instant:
                    return None  # the zone's rules changed since: parse the file again
                fields[name] = value
        fields["source"] = Path(fields["source"])
        fields["tags"] = tuple(fields["tags"])
        return Item(**fields)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
