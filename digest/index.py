"""The items index: what `scan` remembers between runs so that a build reads only what it must.

Parsing the front matter of 100,000 files takes many seconds. The index (SQLite, in the cache folder)
keeps, for each item file that parsed, its date as a timestamp, its draft flag and its slug, plus the time
the index was last brought up to date. A later scan still lists every file and reads its status change
time (ctime) — the kernel sets ctime to "now" whenever a file is written, renamed, linked or has its
times reset, and no program can set it back — so:

- a file whose ctime is older than the index (less a safety margin) is as the index describes it;
- every other file (new, edited, moved in, renamed) is parsed again, as are files that failed last time;
- so is every file in a folder that the index does not know under that name and inode: a folder moved
  in, renamed or replaced changes its own ctime, not that of the files inside it;
- the files the index places inside the window are parsed too (the build needs their full text).

No item inside a window can be missed, whatever its file is called. The index is only a cache: when it is
missing, damaged, from another version, or made under another time zone, it is rebuilt from the files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

VERSION = 3
# ctime may lag the wall clock by a timer tick, and a file can change while a scan runs: anything changed
# in the last seconds before a scan started is parsed again by the next scan.
MARGIN_NS = 2_000_000_000


class Index:
    """An open items index; every method degrades to "know nothing" rather than fail the build."""

    def __init__(self, path: Path, *, items_dir: Path, tz: str) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.built_ns = 0  # 0: nothing is known, every file is parsed
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._prepare(str(items_dir.resolve()), tz)
        except sqlite3.Error:
            self._reset_file()

    def _prepare(self, items_dir: str, tz: str) -> None:
        assert self.db is not None
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        wanted = {"version": str(VERSION), "items_dir": items_dir, "tz": tz}
        if any(meta.get(k) != v for k, v in wanted.items()):
            db.executescript(
                "DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS bad; DROP TABLE IF EXISTS dirs;"
                "DELETE FROM meta;"
                "CREATE TABLE files (key TEXT PRIMARY KEY, ts REAL NOT NULL, draft INTEGER NOT NULL,"
                " slug TEXT NOT NULL);"
                "CREATE INDEX files_ts ON files (ts); CREATE INDEX files_slug ON files (slug);"
                "CREATE TABLE bad (key TEXT PRIMARY KEY);"
                "CREATE TABLE dirs (key TEXT PRIMARY KEY, inode INTEGER NOT NULL);"
            )
            db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())
            return
        self.built_ns = int(meta.get("built_ns", "0"))

    def _reset_file(self) -> None:
        """A damaged index file: remove it; this run parses everything and the next one starts afresh."""
        if self.db is not None:
            with suppress(sqlite3.Error):
                self.db.close()
        self.db = None
        self.built_ns = 0
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
        dirs: dict[str, int] | None = None,
    ) -> None:
        """Record what this scan parsed, and that the index is now current as of the scan's start."""
        if self.db is None:
            return
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                ((k, ts, int(d), s) for k, ts, d, s in good),
            )
            db.execute("DELETE FROM bad")
            db.executemany("INSERT OR REPLACE INTO bad VALUES (?)", ((k,) for k in bad))
            db.executemany("DELETE FROM files WHERE key = ?", ((k,) for k in gone))
            if dirs is not None:
                db.execute("DELETE FROM dirs")
                db.executemany("INSERT INTO dirs VALUES (?, ?)", dirs.items())
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('built_ns', ?)", (str(scan_started_ns - MARGIN_NS),)
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
