"""A connection's worker that fails: the replies it is owed are still recorded, so a resume re-sends only
what the server did not take. Against the real aiosmtpd test server (tests/smtpserver.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from smtpserver import (
    MONTH,
    Handler,
    Msg,
    Server,
    deliver_all,
    journal_rows,
    open_session,
    shown,
    subscribers,
)

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
    from digest import lane

    monkeypatch.setattr(lane, "SALVAGE_WAIT", 0.2)
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


@pytest.mark.parametrize(
    ("offers", "wait"),
    [({"pipelining": True, "chunking": True}, 0.0), ({"pipelining": True}, 0.0), ({"pipelining": True}, 0.1)],
    ids=["bdat-at-once", "data-at-once", "data"],
)
def test_a_bounded_drain_gives_up_on_replies_that_do_not_come(offers: dict[str, bool], wait: float) -> None:
    handler = Handler(**offers, hold=0.5)
    message = Msg("a@example.org")
    with Server(handler) as server:
        session = open_session(server.port, window=5)
        try:
            assert session.submit(message) == []
            done = session.drain(hand_over=False, wait=wait)
        finally:
            session.close()
    # Lost, as from a dropped connection: a resume sends it again (a 250 would come too late to record).
    assert [(m, shown(o).split(":")[0]) for m, o in done] == [(message, "lost")]
    assert session.broken


# ---- the window's cap: what the client may leave unread while it writes ----

LONGEST = 512  # octets: the longest reply line RFC 5321 allows


def _reply(code: int) -> bytes:
    line = b"%d 2.0.0 " % code
    return line + b"x" * (LONGEST - 2 - len(line)) + b"\r\n"


def _stubborn_server(listener: socket.socket, got: list[str]) -> None:
    # Writes each reply whole (blocking) through a small send buffer, and reads nothing meanwhile: if the
    # client leaves more replies unread than its receive buffer holds, both ends wait on each other.
    conn, _ = listener.accept()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with conn, conn.makefile("rb") as f:
        conn.sendall(_reply(220))
        while line := f.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-test\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
            elif verb == b"BDAT":
                f.read(int(line.split()[1]))
                conn.sendall(_reply(250))
            elif verb == b"RCPT":
                got.append(line[9:-3].decode())
                conn.sendall(_reply(250))
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                conn.sendall(_reply(250))


def test_the_largest_window_cannot_stall_on_unread_replies() -> None:
    from digest.config.values import WINDOW_MAX

    listener = socket.create_server(("127.0.0.1", 0))
    got: list[str] = []
    server = threading.Thread(target=_stubborn_server, args=(listener, got), daemon=True)
    server.start()
    body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 31
    messages = [Msg(f"r{n}@example.org", body) for n in range(3 * WINDOW_MAX)]
    try:
        # A stall would end in the session's timeout: every message would then be lost, not answered.
        replies = deliver_all(listener.getsockname()[1], messages, window=WINDOW_MAX, timeout=20)
    finally:
        listener.close()
    assert [r for _, r in replies] == [_reply(250).decode()[:-2].rstrip()] * len(messages)
    assert got == [m.recipient for m in messages]


def test_a_window_over_the_cap_is_a_usage_error(ws: Path, run: Run) -> None:
    result = run("send", *MONTH, "--subscribers", "x.csv", "--window", "33")
    assert result.exit_code == 2
    assert "--window" in result.stderr
    assert "from 1 to 32" in result.stderr


def test_the_largest_window_is_used_in_full(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    people = [(f"r{n}@example.org", f"R {n}") for n in range(40)]
    handler = Handler(pipelining=True, chunking=True, hold=0.3)
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--window", "32")
    assert result.exit_code == 0, result.stderr
    assert handler.unanswered_max == 32
    assert handler.counts() == {e: 1 for e, _ in people}
