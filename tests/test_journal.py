"""The send journal on its own: private, durable, one per digest, its meaning of "sent in full"."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.cli.sending import status_line
from digest.errors import JournalError, SendError
from digest.journal import Counts, Journal, Status, journal_path, read_counts, status
from digest.sent import last_sent_in_full


def test_the_journal_and_its_companions_are_private(tmp_path: Path) -> None:
    old = os.umask(0)  # even when the user's umask would let everyone read
    try:
        with Journal(tmp_path / "journal.sqlite") as journal:
            journal.add_pending([("a@example.org", "a@example.org")])
            files = list(tmp_path.iterdir())
            assert {p.name for p in files} >= {"journal.sqlite", "journal.sqlite-wal"}
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(old)


def test_one_journal_per_digest_folder(tmp_path: Path) -> None:
    assert journal_path(tmp_path / "2021-03") == tmp_path / "2021-03" / "journal.sqlite"


def test_counts_are_each_in_their_place(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    rows = [(f"p{n}@example.org", f"p{n}@example.org") for n in range(10)]
    with Journal(path) as journal:
        journal.add_pending(rows)
        for key, _ in rows[:4]:
            journal.record(key, "sent", code=250, reply="ok")
        for key, _ in rows[4:7]:
            journal.record(key, "failed", code=550, reply="no")
        for key, _ in rows[7:9]:
            journal.record(key, "deferred", code=451, reply="later")
        assert journal.counts() == Counts(pending=1, sent=4, failed=3, deferred=2)
        assert journal.done_keys() == {k for k, _ in rows[:7]}
    counts, _meta = read_counts(path)
    assert counts == Counts(pending=1, sent=4, failed=3, deferred=2)
    assert str(counts) == "4 sent, 3 failed, 2 deferred, 1 pending"
    assert counts.total == 10
    found = status(tmp_path)
    assert (found.counts, found.complete) == (counts, False)


def test_status_without_a_journal(tmp_path: Path) -> None:
    with pytest.raises(SendError, match="no send journal in"):
        status(tmp_path)


def test_a_failed_write_breaks_the_journal_for_good(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.add_pending([("a@example.org", "a@example.org"), ("b@example.org", "b@example.org")])
        journal.check()
        journal.touch("a@example.org")
        journal.db.execute("pragma query_only = on")  # every write now fails inside SQLite
        with pytest.raises(JournalError, match="cannot write the send journal"):
            journal.record("a@example.org", "sent", code=250, reply="ok")
        journal.db.execute("pragma query_only = off")
        # The journal stays broken: a result lost once means no message may follow.
        with pytest.raises(JournalError, match="cannot write the send journal"):
            journal.check()
        with pytest.raises(JournalError, match="cannot write the send journal"):
            journal.touch("b@example.org")
        with pytest.raises(JournalError, match="cannot write the send journal"):
            journal.record("b@example.org", "sent", code=250, reply="ok")


def test_touch_is_a_real_write(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.add_pending([("a@example.org", "a@example.org")])
        journal.db.execute("pragma query_only = on")
        with pytest.raises(JournalError):
            journal.touch("a@example.org")


def test_one_send_per_journal_at_a_time(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite"), pytest.raises(JournalError, match="another `digest send`"):
        Journal(tmp_path / "journal.sqlite")


def test_closing_waits_for_a_write_in_progress(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.add_pending([("a@example.org", "a@example.org")])
    closed = threading.Event()
    with journal._lock:  # a worker is in the middle of a write
        closer = threading.Thread(target=lambda: (journal.close(), closed.set()))
        closer.start()
        assert not closed.wait(0.2)
        assert journal.db is not None
    closer.join(10)
    assert closed.is_set()
    with pytest.raises(JournalError, match="closed"):
        journal.record("a@example.org", "sent", code=250, reply="ok")


def test_results_survive_a_process_that_never_closed_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    journal.add_pending([("a@example.org", "a@example.org")])
    journal.record("a@example.org", "sent", code=250, reply="ok")
    other = sqlite3.connect(path)  # another process would see it now, before any close
    assert other.execute("select status from recipients").fetchall() == [("sent",)]
    other.close()
    journal.close()


def _sent_in_full(folder: Path, day: str, *, items: tuple[str, ...] = (), sent_now: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with Journal(journal_path(folder)) as journal:
        end = datetime.fromisoformat(day).replace(tzinfo=UTC)
        journal.sent_in_full(newest_end=end, content_hash="h1", items=items, sent_now=sent_now)


def test_last_sent_in_full_is_the_newest_item_of_any_complete_journal(tmp_path: Path) -> None:
    assert last_sent_in_full(tmp_path, UTC) is None
    _sent_in_full(tmp_path / "2021-03", "2021-04-01", items=("march-a", "march-b"))
    _sent_in_full(tmp_path / "2021-02", "2021-03-01", items=("feb",))  # sent later: does not move it back
    (tmp_path / "2021-04").mkdir()
    with Journal(journal_path(tmp_path / "2021-04")) as journal:  # begun, never complete
        journal.set_meta(newest_item_end="2021-05-01T00:00:00+00:00")
    (tmp_path / "2021-05").mkdir()
    with Journal(journal_path(tmp_path / "2021-05")) as journal:  # complete, but no offset: not read
        journal.set_meta(newest_item_end="2021-06-01T00:00:00", completed_at="2021-06-02T00:00:00+00:00")
    found = last_sent_in_full(tmp_path, UTC)
    assert found is not None
    folder, sent = found
    assert (folder, sent.newest_end) == (tmp_path / "2021-03", datetime(2021, 4, 1, tzinfo=UTC))
    # What they sent is in their journals, whatever the folders hold now (here: nothing).
    assert (sent.items, sent.unknown_end) == ({"march-a", "march-b", "feb"}, None)
    assert sent.folders == {"2021-03", "2021-02"}


def test_a_journal_from_before_the_items_were_recorded_is_read_with_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "2021-03"
    folder.mkdir()
    with Journal(journal_path(folder)) as journal:
        journal.set_meta(
            newest_item_end="2021-04-01T00:00:00+00:00",
            completed_at="2021-04-02T00:00:00+00:00",
            sent_content_hash="h1",
        )
    found = last_sent_in_full(tmp_path, UTC)
    assert found is not None
    # No built folder holds what it sent: its items are not known, its newest item's end is.
    assert (found[1].items, found[1].unknown_end) == (frozenset(), datetime(2021, 4, 1, tzinfo=UTC))


def test_a_run_that_sent_nothing_keeps_the_version_the_list_got(tmp_path: Path) -> None:
    _sent_in_full(tmp_path / "2021-03", "2021-04-01")
    with Journal(journal_path(tmp_path / "2021-03")) as journal:
        end = datetime(2021, 4, 2, tzinfo=UTC)
        journal.sent_in_full(newest_end=end, content_hash="h2", items=("new",), sent_now=False)
        assert journal.get("newest_item_end") == "2021-04-01T00:00:00+00:00"
        assert journal.get("sent_items") == "[]"
        journal.sent_in_full(newest_end=end, content_hash="h2", items=("new",), sent_now=True)
        assert journal.get("newest_item_end") == "2021-04-02T00:00:00+00:00"
        assert journal.get("sent_content_hash") == "h2"
        assert journal.get("sent_items") == '["new"]'


def test_a_journal_from_before_suppressions_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        create table meta (key text primary key, value text not null);
        create table recipients (
            key text primary key, email text not null,
            status text not null default 'pending' check (status in ('pending', 'sent', 'failed', 'deferred')),
            code integer, reply text, message_id text, attempts integer not null default 0, updated text
        );
        insert into meta values ('subject', 'Old');
        insert into recipients (key, email, status, code, reply) values ('a@example.org', 'A@example.org', 'sent', 250, 'ok');
        insert into recipients (key, email) values ('b@example.org', 'b@example.org');
        insert into recipients (key, email) values ('c@example.org', 'c@example.org');
        """
    )
    db.close()
    with Journal(path) as journal:
        assert journal.get("subject") == "Old"
        journal.mark_suppressed([("b@example.org", "bounced (send:x)"), ("a@example.org", "manual")])
        assert journal.counts() == Counts(sent=1, pending=1, suppressed=1)
        assert journal.keys("suppressed") == {"b@example.org"}  # a was sent: its result stands
        journal.mark_suppressed([], lifted=["b@example.org", "a@example.org"])
        assert journal.counts() == Counts(sent=1, pending=2)
    found = status(tmp_path, listed=5)
    assert found.suppressed == []


def test_status_lists_the_suppressed_with_why(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        journal.add_pending([(f"p{n}@example.org", f"P{n}@example.org") for n in range(4)])
        journal.record("p1@example.org", "failed", code=550, reply="RCPT TO: 5.1.1 unknown")
        journal.mark_suppressed([(f"p{n}@example.org", f"why {n}") for n in (2, 0, 3, 1)])
    found = status(tmp_path, listed=2)
    assert found.counts == Counts(failed=1, suppressed=3)  # refused before: that result stands
    assert str(found.counts) == "0 sent, 1 failed, 0 deferred, 0 pending, 3 suppressed"
    assert found.suppressed == [("P0@example.org", "why 0"), ("P2@example.org", "why 2")]


@pytest.mark.parametrize(
    ("counts", "complete", "said"),
    [
        (Counts(sent=2), True, "2 sent, 0 failed, 0 deferred, 0 pending (complete)"),
        (Counts(sent=2, pending=2), False, "2 sent, 0 failed, 0 deferred, 2 pending"),
        # A later run to a longer list, refused before it sent anything: its new people are pending.
        (
            Counts(sent=12, pending=2),
            True,
            "12 sent, 0 failed, 0 deferred, 2 pending (a list was sent in full on 2026-12-01; 2 still to send)",
        ),
        (
            Counts(sent=3, deferred=1, pending=1),
            True,
            "3 sent, 0 failed, 1 deferred, 1 pending (a list was sent in full on 2026-12-01; 2 still to send)",
        ),
    ],
)
def test_a_status_says_complete_only_when_nobody_is_left(counts: Counts, complete: bool, said: str) -> None:
    found = status_of(counts, complete)
    assert status_line(found) == f"out/2021-03/journal.sqlite: {said}"


def status_of(counts: Counts, complete: bool) -> Status:
    done = "2026-12-01T09:30:00+00:00" if complete else ""
    return Status(Path("out/2021-03/journal.sqlite"), counts, complete, [], done)


def test_sent_in_full_keeps_when_it_first_was_and_status_reads_it(tmp_path: Path) -> None:
    """A later run that finds nobody left calls sent_in_full again: the day said is still the first one's."""
    folder = tmp_path / "2021-03"
    _sent_in_full(folder, "2021-04-01", items=("a",))
    with Journal(journal_path(folder)) as journal:
        journal.set_meta(completed_at="2021-04-02T09:00:00+00:00")  # as the first run wrote it
        journal.add_pending([("late@example.org", "late@example.org")])
    _sent_in_full(folder, "2021-04-01", items=("a",), sent_now=False)
    found = status(folder)
    assert found.completed_at == "2021-04-02T09:00:00+00:00"
    assert status_line(found).endswith("(a list was sent in full on 2021-04-02; 1 still to send)")
