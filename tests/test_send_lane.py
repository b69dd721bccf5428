"""A connection's worker that fails: the replies it is owed are still recorded, so a resume re-sends only
what the server did not take. Against the real aiosmtpd test server (tests/smtpserver.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from smtpserver import MONTH, Handler, Server, journal_rows, subscribers

Run = Callable[..., Result]
PEOPLE = [(f"{x}@example.org", x.upper()) for x in "abcdefgh"]


def fail_at(monkeypatch: pytest.MonkeyPatch, email: str) -> None:
    """Make the message maker raise for `email`: a bug inside digest, not the SMTP dialogue."""
    from digest import presend

    original = presend.Makers.message

    def message(self: Any, address: str, *args: Any, **kw: Any) -> Any:
        if address == email:
            raise RuntimeError(f"no message for {address}")
        return original(self, address, *args, **kw)

    monkeypatch.setattr(presend.Makers, "message", message)


@pytest.mark.parametrize(
    ("offers", "window", "owed"),
    [
        ({"pipelining": True, "chunking": True}, 5, "abcd"),
        # DATA: c's data went with d's envelope; d's data is not written after the error.
        ({"pipelining": True}, 5, "abc"),
    ],
    ids=["bdat", "data"],
)
def test_a_worker_that_fails_records_the_replies_it_is_owed(
    ws: Path,
    run: Run,
    smtp_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    offers: dict[str, bool],
    window: int,
    owed: str,
) -> None:
    # The server holds its replies back: when e's message fails to be made, a to d are handed over and
    # unanswered (with BDAT); their replies come after the error and must still reach the journal.
    handler = Handler(**offers, hold=0.5)
    csv = subscribers(ws, PEOPLE)
    with Server(handler) as server:
        smtp_env(server.port)
        with monkeypatch.context() as patch:
            fail_at(patch, "e@example.org")
            first = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--window", str(window))
        assert first.exit_code == 1
        assert "Error: sending stopped: RuntimeError: no message for e@example.org" in first.stderr
        taken = set(handler.counts())
        rows = journal_rows(ws)
        sent = {k for k, (s, *_r) in rows.items() if s == "sent"}
        assert sent == taken  # every message the server took is recorded, and only those
        assert sent == {f"{x}@example.org" for x in owed}
        assert {k for k, (s, *_r) in rows.items() if s == "pending"} == {e for e, _ in PEOPLE} - sent
        resumed = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--window", str(window))
    assert resumed.exit_code == 0, resumed.stderr
    assert handler.counts() == {e: 1 for e, _ in PEOPLE}  # the resume sent only what the server lacked
    assert {s for s, *_r in journal_rows(ws).values()} == {"sent"}


def test_replies_that_do_not_come_in_time_leave_their_messages_pending(
    ws: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait for what is owed is bounded: a server slower than that leaves those messages unrecorded,
    # pending, re-sent by the resume; at most the window of them.
    from digest import send

    monkeypatch.setattr(send, "SALVAGE_WAIT", 0.2)
    handler = Handler(pipelining=True, chunking=True, hold=1.5)
    csv = subscribers(ws, PEOPLE)
    with Server(handler) as server:
        smtp_env(server.port)
        with monkeypatch.context() as patch:
            fail_at(patch, "e@example.org")
            first = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--window", "5")
        assert first.exit_code == 1
        assert {s for s, *_r in journal_rows(ws).values()} == {"pending"}
        resumed = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--window", "5")
    assert resumed.exit_code == 0, resumed.stderr
    counts = handler.counts()
    assert set(counts) == {e for e, _ in PEOPLE}
    assert sum(counts.values()) - len(PEOPLE) <= 5  # re-sent: at most the window
    assert {s for s, *_r in journal_rows(ws).values()} == {"sent"}
