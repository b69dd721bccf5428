"""The send journal: one SQLite file per digest, out/<slug>/journal.sqlite, whatever list a send used.

It is keyed on the recipient (the address, lower-cased), not on the list file: every address the digest
was delivered to is in it, from whichever list, so the same list through a symlink, a renamed copy or a
re-export reaches nobody twice, and two lists that share a file name share nothing but the people on both.
For every recipient it records pending, sent (with the server's reply and the Message-ID), failed (a 5xx:
code and text, not retried) or deferred (4xx or a dropped connection after every retry: tried again by the
next run) or suppressed (on the suppression list when the run began: the reply says why; a later run
looks again, so an address taken off the list gets the digest). A run resumes from it: only recipients not
yet sent or failed get a message.

"Sent in full" (`completed_at`, for `build --since-last-send`): some run found everyone on its list sent or
refused for good. A later run to another list does not undo that: the first list did get the digest.

Durability: WAL mode. Each result is committed on its own the moment the server has accepted the message,
so a killed process loses no result it had received (the kernel holds the WAL write). Every
`SYNC_EVERY` results or `SYNC_SECONDS`, one commit runs with synchronous=FULL, which fsyncs the WAL and so
every earlier result too: a power cut can cost at most that many re-sends, never a lost recipient.
A write that fails marks the journal broken: the send checks that before it hands over each message.
The file holds addresses: it is created private (0600); do not publish it with the web version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from digest.errors import JournalError, SendError
from digest.fsutil import shown
from digest.outdir import JOURNAL

SYNC_EVERY = 64
SYNC_SECONDS = 0.25
T = TypeVar("T")
STATES = ("pending", "sent", "failed", "deferred", "suppressed")


_RECIPIENTS = """
create table if not exists recipients (
    key text primary key,              -- the address, lower-cased
    email text not null,
    status text not null default 'pending'
        check (status in ('pending', 'sent', 'failed', 'deferred', 'suppressed')),
    code integer,                      -- the SMTP reply code of the last attempt
    reply text,                        -- the server's reply (sent: the queue id line; failed: why);
                                       -- suppressed: the suppression's reason, source, time and evidence
    message_id text,
    attempts integer not null default 0,
    updated text
)
"""
_SCHEMA = f"create table if not exists meta (key text primary key, value text not null);\n{_RECIPIENTS};"


def journal_path(folder: Path) -> Path:
    """The journal of the digest in `folder`: one per digest, whatever list its recipients came from."""
    return folder / JOURNAL


@dataclass(frozen=True)
class Counts:
    """How many recipients are in each state."""

    pending: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    suppressed: int = 0

    @property
    def total(self) -> int:
        """Every recipient the journal knows."""
        return self.pending + self.sent + self.failed + self.deferred + self.suppressed

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.failed} failed, {self.deferred} deferred, {self.pending} pending"
        return f"{text}, {self.suppressed} suppressed" if self.suppressed else text


class Journal:
    """An open journal; thread-safe (one lock around one SQLite connection). Use as a context manager."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create and not path.exists():
            raise JournalError(f"{path}: no send journal (nothing was sent to this list yet)")
        self._lock = threading.Lock()
        self.broken = ""  # why the last write failed: no message may go out after that
        self._unsynced = 0
        self._synced_at = time.monotonic()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise JournalError(f"{path}: cannot open the send journal: {err.strerror}") from err
        self._lockfd = fd
        try:
            # One send per journal at a time (SQLite's own locks are per transaction, not per run).
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"{path}: another `digest send` is using this journal right now") from None
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("pragma journal_mode=wal")
            self.db.execute("pragma synchronous=full")
            self.db.executescript(_SCHEMA)
            _migrate(self.db)
            self.db.execute("pragma synchronous=normal")
        except sqlite3.Error as err:
            self.close()
            raise JournalError(f"{path}: cannot use the send journal: {err}") from err

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Make everything durable and release the journal (under its lock: no write is cut in half)."""
        lock = getattr(self, "_lock", None)
        with lock if lock is not None else contextlib.nullcontext():
            db = getattr(self, "db", None)
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("pragma synchronous=full")
                    db.execute("pragma wal_checkpoint(truncate)")
                with contextlib.suppress(sqlite3.Error):
                    db.close()
                self.db = None  # type: ignore[assignment]
        if self._lockfd >= 0:
            os.close(self._lockfd)
            self._lockfd = -1

    # ---- meta ----

    def get(self, key: str) -> str | None:
        """One meta value."""
        with self._lock:
            row = self.db.execute("select value from meta where key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, **values: str) -> None:
        """Set meta values, durably."""
        with self._lock:
            self.db.execute("pragma synchronous=full")
            self.db.execute("begin")
            self.db.executemany(
                "insert into meta (key, value) values (?, ?) "
                "on conflict(key) do update set value = excluded.value",
                list(values.items()),
            )
            self.db.execute("commit")
            self.db.execute("pragma synchronous=normal")

    def sent_in_full(
        self, *, newest_end: datetime | None, content_hash: str, items: Iterable[str], sent_now: bool
    ) -> None:
        """Record that a run found everyone on its list done (for `build --since-last-send`)."""
        # When a run first found it so: a later run that finds nothing left to send does not move it.
        done = {"completed_at": self.get("completed_at") or datetime.now(UTC).isoformat(timespec="seconds")}
        # What went out: this version's items and the newest of them. A run that sent nothing keeps the
        # record of an earlier version that the list did get.
        if newest_end is not None and (sent_now or self.get("sent_content_hash") in (None, content_hash)):
            done["newest_item_end"] = newest_end.isoformat()
            done["sent_content_hash"] = content_hash
            done["sent_items"] = json.dumps(sorted(items))
        self.set_meta(**done)

    def bind(self, *, content_hash: str, subject: str, subscribers: Path, allow_changed: bool) -> None:
        """Tie the journal to one version of the digest; refuse to resume with other content."""
        known = self.get("content_hash")
        if known is not None and known != content_hash:
            counts = self.counts()
            if counts.sent and not allow_changed:
                raise JournalError(
                    f"{self.path}: {counts.sent} recipients already got a different version of this digest "
                    f"(subject then: {self.get('subject')!r}). Sending the new version to the rest would "
                    "give one list two versions; pass --allow-changed to do it anyway."
                )
        self.set_meta(content_hash=content_hash, subject=subject, subscribers=str(subscribers))

    # ---- recipients ----

    def add_pending(self, rows: Iterable[tuple[str, str]]) -> None:
        """Record (key, email) as pending unless already known; one durable transaction."""
        with self._lock:
            self.db.execute("pragma synchronous=full")
            self.db.execute("begin")
            self.db.executemany("insert or ignore into recipients (key, email) values (?, ?)", rows)
            self.db.execute("commit")
            self.db.execute("pragma synchronous=normal")

    def mark_suppressed(self, rows: Iterable[tuple[str, str]], *, lifted: Iterable[str] = ()) -> None:
        """Record (key, why) as suppressed, and the `lifted` keys (no longer suppressed) as pending again;
        one durable transaction. Recipients already sent or refused keep their result."""
        with self._lock, self._writing():
            self.db.execute("pragma synchronous=full")
            self.db.execute("begin")
            self.db.executemany(
                "update recipients set status = 'suppressed', code = null, reply = ? "
                "where key = ? and status not in ('sent', 'failed')",
                [(why[:500], key) for key, why in rows],
            )
            self.db.executemany(
                "update recipients set status = 'pending', reply = null "
                "where key = ? and status = 'suppressed'",
                [(key,) for key in lifted],
            )
            self.db.execute("commit")
            self.db.execute("pragma synchronous=normal")

    def keys(self, status: str) -> set[str]:
        """The recipients in one state."""
        with self._lock:
            return {r[0] for r in self.db.execute("select key from recipients where status = ?", (status,))}

    def done_keys(self) -> set[str]:
        """Recipients that must not get another message: sent, or refused for good (5xx)."""
        with self._lock:
            return {
                r[0] for r in self.db.execute("select key from recipients where status in ('sent', 'failed')")
            }

    def record(self, key: str, status: str, *, code: int | None, reply: str, message_id: str = "") -> None:
        """Record one result at once (a killed process keeps it); fsync the WAL now and then."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self._writing():
            self._unsynced += 1
            durable = self._unsynced >= SYNC_EVERY or time.monotonic() - self._synced_at >= SYNC_SECONDS
            if durable:
                self.db.execute("pragma synchronous=full")
            self.db.execute(
                "update recipients set status = ?, code = ?, reply = ?, message_id = ?, "
                "attempts = attempts + 1, updated = ? where key = ?",
                (status, code, reply[:500], message_id, now, key),
            )
            if durable:
                self.db.execute("pragma synchronous=normal")
                self._unsynced = 0
                self._synced_at = time.monotonic()

    def touch(self, key: str) -> None:
        """A real write (the recipient's `updated`), to prove the journal writable before a delivery."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self._writing():
            self.db.execute("update recipients set updated = ? where key = ?", (now, key))

    def check(self) -> None:
        """JournalError if a write has failed: the result of the next message could not be kept."""
        if self.broken:
            raise JournalError(self.broken)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        if self.broken:
            raise JournalError(self.broken)
        if self.db is None:
            raise JournalError(f"{self.path}: the send journal is closed")
        try:
            yield
        except sqlite3.Error as err:
            self.broken = (
                f"{self.path}: cannot write the send journal ({err}); sending stopped, "
                "as a result that is not kept would be sent again"
            )
            raise JournalError(self.broken) from err

    def counts(self) -> Counts:
        """How many recipients are pending, sent, failed and deferred."""
        with self._lock:
            rows = dict(self.db.execute("select status, count(*) from recipients group by status").fetchall())
        return Counts(**{s: int(rows.get(s, 0)) for s in STATES})

    def failures(self, limit: int = 20) -> list[tuple[str, int | None, str]]:
        """(email, code, reply) of failed and deferred recipients."""
        with self._lock:
            rows = self.db.execute(
                "select email, code, reply from recipients where status in ('failed', 'deferred') "
                "order by status, email limit ?",
                (limit,),
            ).fetchall()
        return [(str(e), c, str(r or "")) for e, c, r in rows]


def _migrate(db: sqlite3.Connection) -> None:
    # A journal from before the 'suppressed' state: its CHECK refuses that status, and SQLite cannot change
    # a CHECK in place, so the rows move into a table made with the new schema (one transaction).
    row = db.execute("select sql from sqlite_master where type = 'table' and name = 'recipients'").fetchone()
    if row is None or "'suppressed'" in row[0]:
        return
    db.execute("begin")
    db.execute("alter table recipients rename to recipients_old")
    db.execute(_RECIPIENTS)
    db.execute("insert into recipients select * from recipients_old")
    db.execute("drop table recipients_old")
    db.execute("commit")


@dataclass(frozen=True)
class Snapshot:
    """One journal read once, read-only: the counts, the meta values, some suppressed recipients with why
    (email, reply), and the keys already sent or refused (when asked for)."""

    counts: Counts
    meta: dict[str, str]
    suppressed: list[tuple[str, str]]
    done: frozenset[str]


def _readonly(path: Path, read: Callable[[sqlite3.Connection], T]) -> T:
    """Run `read` on the journal opened read-only: no lock, nothing written, even while a send runs or on a
    read-only mount."""
    if not path.is_file():
        raise JournalError(f"{path}: no send journal")
    # A WAL database needs its -shm file, which a read-only folder cannot get. Nothing writes there then,
    # and a send's last act is to fold the WAL into the file: read the file as it is (immutable).
    for mode in ("mode=ro", "immutable=1"):
        try:
            db = sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True)
            try:
                return read(db)
            finally:
                db.close()
        except sqlite3.OperationalError as err:
            if mode == "immutable=1":
                raise JournalError(f"{path}: cannot read the send journal: {err}") from err
        except sqlite3.Error as err:
            raise JournalError(f"{path}: not a send journal: {err}") from err
    raise AssertionError("unreachable")


def read_journal(path: Path, *, listed: int = 0, done: bool = False) -> Snapshot:
    """One journal, read-only (see _readonly). `listed`: how many suppressed recipients to return with why;
    `done`: also the keys sent or refused."""

    def read(db: sqlite3.Connection) -> Snapshot:
        rows = dict(db.execute("select status, count(*) from recipients group by status").fetchall())
        meta = {str(k): str(v) for k, v in db.execute("select key, value from meta")}
        why = db.execute(
            "select email, reply from recipients where status = 'suppressed' order by email limit ?",
            (listed,),
        ).fetchall()
        keys = db.execute("select key from recipients where status in ('sent', 'failed')") if done else ()
        counts = Counts(**{s: int(rows.get(s, 0)) for s in STATES})
        finished = frozenset(str(k) for (k,) in keys)
        return Snapshot(counts, meta, [(str(e), str(r or "")) for e, r in why], finished)

    return _readonly(path, read)


def message_ids(path: Path) -> list[tuple[str, str]]:
    """(address, Message-ID) of every recipient a message went to, read-only (for the bounce reader)."""
    rows = _readonly(
        path, lambda db: db.execute("select email, coalesce(message_id, '') from recipients").fetchall()
    )
    return [(str(e), str(m)) for e, m in rows]


def read_counts(path: Path) -> tuple[Counts, dict[str, str]]:
    """The counts and meta values of one journal, read-only (see read_journal)."""
    found = read_journal(path)
    return found.counts, found.meta


def journals(out_dir: Path) -> Iterator[Path]:
    """Every send journal under out/ (out/<slug>/journal.sqlite)."""
    if out_dir.is_dir():
        yield from sorted(out_dir.glob(f"*/{JOURNAL}"))


@dataclass(frozen=True)
class Status:
    """A journal's counts, whether some send found its whole list done, and (email, why) of the first
    suppressed recipients."""

    journal: Path
    counts: Counts
    complete: bool
    suppressed: list[tuple[str, str]] = field(default_factory=list)
    completed_at: str = ""  # when a run first found its whole list done (ISO, UTC)


def status(folder: Path, *, listed: int = 20) -> Status:
    """The journal of a built folder, read-only: no lock, no recovery, nothing written (a read-only mount)."""
    path = journal_path(folder)
    if not path.exists():
        raise SendError(f"no send journal in {shown(folder)}/: nothing was sent for it yet")
    found = read_journal(path, listed=listed)
    done = str(found.meta.get("completed_at") or "")
    return Status(path, found.counts, bool(done), found.suppressed, done)
