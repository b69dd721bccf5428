"""The suppression list: who must not get mail (unsubscribed, bounced, complained, or by hand), and why.

One SQLite file per workspace (config.paths.suppressions, `suppressions.sqlite` by default), kept out of git:
the addresses are personal data that must be erasable, and a git history never forgets. Every decision
keeps its evidence (the DSN status and text, the time of the request, the command) and is reversible:
`remove` takes an address off the list and the history keeps both events, so a reader can see why a person
did or did not get a digest.

Several writers may use the file at once (the unsubscribe endpoint, the bounce reader, a send that meets
a 5xx): WAL mode, a busy timeout, and each write one `begin immediate` transaction, so none is lost.
Addresses are normalised exactly as the subscriber list keys them (digest/subscribers.py), so the send's
check is one set lookup per recipient. Reading an ESP's CSV export and writing ours: digest/suppresscsv.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import SuppressionError
from digest.subscribers import Subscriber, valid_address

if TYPE_CHECKING:
    from digest.config import Config

REASONS = ("unsubscribed", "bounced", "complained", "manual")
ACTIONS = ("added", "removed")
_ENTRY = "address, reason, at, source, evidence"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another (endpoint, bounce reader, send) to commit

_SCHEMA = """
create table if not exists suppressed (
    address text primary key,          -- normalised as the subscriber list keys it
    reason text not null,
    at text not null,                  -- ISO 8601, UTC
    source text not null,
    evidence text not null default ''
);
create table if not exists events (
    id integer primary key autoincrement,
    address text not null,
    action text not null check (action in ('added', 'removed')),
    reason text not null default '',
    at text not null,
    source text not null,
    evidence text not null default ''
);
create index if not exists events_by_address on events (address, id);
"""


@dataclass(frozen=True)
class Entry:
    """One suppressed address: the first decision that suppressed it, with its evidence."""

    address: str
    reason: str
    at: datetime
    source: str
    evidence: str = ""


@dataclass(frozen=True)
class Event:
    """One line of an address's history: added (with the reason) or removed (a re-subscribe)."""

    address: str
    action: str
    reason: str
    at: datetime
    source: str
    evidence: str = ""


def normalise(address: str) -> str:
    """The address as the subscriber list keys it (syntax checked, no DNS); SuppressionError if invalid."""
    try:
        email = valid_address(address.strip())  # the subscriber list's own check
    except ValueError as err:
        raise SuppressionError(str(err)) from None
    return Subscriber(email=email, name="", fields={}).key


def check_reason(reason: str) -> str:
    """The reason if it is one of REASONS; SuppressionError naming the allowed ones otherwise."""
    if reason not in REASONS:
        raise SuppressionError(f"unknown reason {reason!r}: use one of {', '.join(REASONS)}")
    return reason


def _stamp(at: datetime | None) -> str:
    if at is None:
        at = datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("a suppression's time must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="seconds")


class Suppressions:
    """An open suppression list; thread-safe (one lock around one connection). Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            # Created private: it holds addresses. SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as err:
            raise SuppressionError(f"{path}: cannot open the suppression list: {err.strerror}") from err
        try:
            self.db: sqlite3.Connection | None = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
            )
            self._wal()
            with self._write() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
        except sqlite3.Error as err:
            self.close()
            raise SuppressionError(f"{path}: not a usable suppression list: {err}") from err

    def _wal(self) -> None:
        # Switching a new file to WAL needs it alone for a moment, and SQLite answers "locked" at once
        # instead of waiting (the busy timeout does not cover it): two writers opening a new list race here.
        assert self.db is not None
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self.db.execute("pragma journal_mode=wal")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def __enter__(self) -> Suppressions:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        with self._lock:
            if self.db is not None:
                self.db.close()
                self.db = None

    def _conn(self) -> sqlite3.Connection:
        if self.db is None:
            raise SuppressionError(f"{self.path}: the suppression list is closed")
        return self.db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._conn()
            # immediate: take the write lock now, so that writers queue instead of failing to upgrade.
            db.execute("begin immediate")
            try:
                yield db
            except BaseException:
                db.execute("rollback")
                raise
            db.execute("commit")

    # ---- writes ----

    def add(
        self, address: str, *, reason: str, source: str, evidence: str = "", at: datetime | None = None
    ) -> bool:
        """Suppress an address; True if it was not suppressed before (else its first entry stays)."""
        key, why, when = normalise(address), check_reason(reason), _stamp(at)
        return self._add_rows([(key, why, when, evidence)], source=source) == 1

    def add_many(self, rows: Iterable[tuple[str, str, datetime | None, str]], *, source: str) -> int:
        """Suppress (address, reason, at, evidence) rows in one transaction; how many were new."""
        checked = [(normalise(a), check_reason(r), _stamp(t), e) for a, r, t, e in rows]
        return self._add_rows(checked, source=source)

    def _add_rows(self, rows: list[tuple[str, str, str, str]], *, source: str) -> int:
        try:
            with self._write() as db:
                before = db.total_changes
                db.executemany(
                    "insert or ignore into suppressed (address, reason, at, source, evidence) "
                    "values (?, ?, ?, ?, ?)",
                    [(k, r, t, source, e) for k, r, t, e in rows],
                )
                new = db.total_changes - before
                db.executemany(
                    "insert into events (address, action, reason, at, source, evidence) "
                    "values (?, 'added', ?, ?, ?, ?)",
                    [(k, r, t, source, e) for k, r, t, e in rows],
                )
        except sqlite3.Error as err:
            raise SuppressionError(f"{self.path}: cannot write the suppression list: {err}") from err
        return new

    def remove(self, address: str, *, source: str, evidence: str = "", at: datetime | None = None) -> bool:
        """Take an address off the list (a re-subscribe), kept in its history; False if it was not on it."""
        key, when = normalise(address), _stamp(at)
        try:
            with self._write() as db:
                gone = db.execute("delete from suppressed where address = ?", (key,)).rowcount
                if gone:
                    db.execute(
                        "insert into events (address, action, at, source, evidence) "
                        "values (?, 'removed', ?, ?, ?)",
                        (key, when, source, evidence),
                    )
        except sqlite3.Error as err:
            raise SuppressionError(f"{self.path}: cannot write the suppression list: {err}") from err
        return gone > 0

    # ---- reads ----

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn().execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise SuppressionError(f"{self.path}: cannot read the suppression list: {err}") from err

    def is_suppressed(self, address: str) -> bool:
        """Whether the address is on the list now."""
        return bool(self._read("select 1 from suppressed where address = ?", (normalise(address),)))

    def suppressed(self) -> set[str]:
        """Every suppressed address (normalised): what a send loads once and checks each recipient against."""
        return {str(r[0]) for r in self._read("select address from suppressed")}

    def entries(self, reason: str | None = None) -> list[Entry]:
        """The suppressed addresses with why, oldest first; only one reason's with `reason`."""
        sql = f"select {_ENTRY} from suppressed"  # noqa: S608 - constants only
        if reason is None:
            rows = self._read(f"{sql} order by at, address")
        else:
            rows = self._read(f"{sql} where reason = ? order by at, address", (check_reason(reason),))
        return [_entry(row) for row in rows]

    def entries_for(self, addresses: Iterable[str]) -> dict[str, Entry]:
        """The entries of these (already normalised) addresses that are suppressed, by address."""
        keys = list(addresses)
        found: dict[str, Entry] = {}
        for i in range(0, len(keys), 500):  # under SQLite's limit of bound parameters
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))  # placeholders only: the values are bound
            sql = f"select {_ENTRY} from suppressed where address in ({marks})"  # noqa: S608
            for row in self._read(sql, tuple(chunk)):
                entry = _entry(row)
                found[entry.address] = entry
        return found

    def history(self, address: str) -> list[Event]:
        """Every decision about an address, oldest first."""
        rows = self._read(
            "select address, action, reason, at, source, evidence from events where address = ? order by id",
            (normalise(address),),
        )
        return [
            Event(str(a), str(act), str(r), datetime.fromisoformat(str(t)), str(s), str(e))
            for a, act, r, t, s, e in rows
        ]


def _entry(row: tuple[object, ...]) -> Entry:
    address, reason, at, source, evidence = row
    return Entry(str(address), str(reason), datetime.fromisoformat(str(at)), str(source), str(evidence))


def open_suppressions(config: Config) -> Suppressions:
    """The workspace's suppression list (config.paths.suppressions), created if absent."""
    return Suppressions(config.paths.suppressions)


def why(entry: Entry) -> str:
    """An entry on one line, as the journal and the send report show it."""
    text = f"{entry.reason} ({entry.source}, {entry.at.isoformat(timespec='seconds')})"
    return f"{text}: {entry.evidence}" if entry.evidence else text
