"""BDAT (RFC 3030) when the server offers CHUNKING, and the window: how many messages one connection may
have unanswered. Against aiosmtpd taught BDAT (tests/smtpserver.py; neither aiosmtpd nor Postfix's
smtp-sink takes BDAT), which can hold its replies back to test the window's bound. The same dialogue
against a real MTA, Exim, is in tests/test_send_mta.py."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import NOW
from smtpserver import (
    MONTH,
    OK,
    Handler,
    Msg,
    Server,
    deliver_all,
    journal_rows,
    open_session,
    subscribers,
)

from digest.message import Outgoing

Run = Callable[..., Result]


@pytest.mark.parametrize(
    ("offers", "bdat"),
    [
        ({"pipelining": True, "chunking": True}, True),
        ({"pipelining": True}, False),
        ({"chunking": True}, False),  # CHUNKING without PIPELINING: one command at a time, with DATA
    ],
    ids=["chunking", "no-chunking", "chunking-without-pipelining"],
)
def test_bdat_is_used_when_offered_and_not_otherwise(offers: dict[str, bool], bdat: bool) -> None:
    handler = Handler(**offers)
    messages = [Msg(f"r{n}@example.org") for n in range(5)]
    with Server(handler) as server:
        assert deliver_all(server.port, messages, window=3) == [(m.recipient, OK) for m in messages]
    assert handler.bdats == (5 if bdat else 0)
    assert handler.data_ends == 5
    assert handler.counts() == {m.recipient: 1 for m in messages}


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_the_bytes_received_are_the_message_without_dot_stuffing(chunking: bool) -> None:
    data = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n"
    handler = Handler(pipelining=True, chunking=chunking)
    with Server(handler) as server:
        assert deliver_all(server.port, [Msg("a@example.org", data)], window=2) == [("a@example.org", OK)]
    assert handler.received == [(["a@example.org"], data)]
    assert handler.bdats == int(chunking)


@pytest.mark.parametrize(("window", "total"), [(1, 4), (3, 9), (5, 7)])
def test_no_more_than_the_window_is_unanswered(window: int, total: int) -> None:
    # The server holds its replies back while it goes on reading: the client has written all it may.
    handler = Handler(pipelining=True, chunking=True, hold=0.2)
    messages = [Msg(f"r{n}@example.org") for n in range(total)]
    with Server(handler) as server:
        assert deliver_all(server.port, messages, window=window) == [(m.recipient, OK) for m in messages]
    assert handler.unanswered_max == window
    assert handler.counts() == {m.recipient: 1 for m in messages}


def test_with_data_one_message_is_unanswered_whatever_the_window() -> None:
    handler = Handler(pipelining=True, hold=0.1)
    messages = [Msg(f"r{n}@example.org") for n in range(4)]
    with Server(handler) as server:
        assert deliver_all(server.port, messages, window=10) == [(m.recipient, OK) for m in messages]
    assert handler.unanswered_max == 1


def test_a_bdat_refused_before_it_was_read_is_never_data() -> None:
    # A refused MAIL FROM: the server refuses RCPT and BDAT too, reads the chunk and drops it; the next
    # transaction starts clean on the same connection.
    handler = Handler(pipelining=True, chunking=True, mail_faults=["451 4.3.2 not now"])
    a, b = Msg("a@example.org", b"Subject: a\r\n\r\nMAIL FROM:<evil@example.org>\r\n"), Msg("b@example.org")
    with Server(handler) as server:
        replies = deliver_all(server.port, [a, b], window=2)
    assert replies == [("a@example.org", "MAIL FROM: 451"), ("b@example.org", OK)]
    assert handler.counts() == {"b@example.org": 1}
    assert handler.connections == 1


# ---- the whole send ----


def test_a_send_over_bdat_records_what_the_server_got(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    # A greeting at the start of a line that begins with ".": the bytes must arrive as made, unstuffed,
    # exactly as the same send over DATA delivers them.
    people = [(f"{x}@example.org", x.upper()) for x in "abcde"]
    csv = subscribers(ws, people)
    got: dict[bool, dict[str, bytes]] = {}
    for chunking in (True, False):
        handler = Handler(pipelining=True, chunking=chunking)
        (ws / "out/2021-03/journal.sqlite").unlink(missing_ok=True)
        with Server(handler) as server:
            smtp_env(server.port, DIGEST_GREETING=".Hi {name},")
            assert run("build", *MONTH).exit_code == 0  # built with that greeting, as a send wants
            result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--window", "2")
        assert result.exit_code == 0, result.stderr
        assert handler.bdats == (len(people) if chunking else 0)
        rows = journal_rows(ws)
        got[chunking] = {}
        for rcpts, raw in handler.received:
            msg = message_from_bytes(raw, policy=policy.default)
            assert rows[rcpts[0]][0] == "sent"
            assert rows[rcpts[0]][3] == msg["Message-ID"]  # the journal names the message the server got
            got[chunking][rcpts[0]] = raw
    assert got[True] == got[False]
    assert set(got[True]) == {e for e, _ in people}
    assert all(re.search(rb"(?m)^\.Hi ", raw) for raw in got[True].values())


def test_a_send_over_bdat_assigns_mid_batch_faults_to_the_right_rows(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    people = [(f"{x}@example.org", x.upper()) for x in "abcdefgh"]
    handler = Handler(
        pipelining=True,
        chunking=True,
        rcpt_faults={"b@example.org": ["451 4.2.0 later"]},  # once: the retry gets through
        refuse={"c@example.org": "550 5.1.1 no such user"},
        data_end_refuse={"d@example.org": "554 5.6.0 bad content"},
        drop_after={"f@example.org"},  # f's 250 arrives, then the connection dies with g, h in flight
    )
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run(
            "send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01", "--window", "4"
        )
    assert result.exit_code == 1, result.stderr
    assert "2 refused, 0 deferred" in result.stderr
    rows = journal_rows(ws)
    assert {k: v[0] for k, v in rows.items()} == {
        **{e: "sent" for e, _ in people if e not in ("c@example.org", "d@example.org")},
        "c@example.org": "failed",
        "d@example.org": "failed",
    }
    assert rows["c@example.org"][1:3] == (550, "RCPT TO: 5.1.1 no such user")
    assert rows["d@example.org"][1:3] == (554, "BDAT: 5.6.0 bad content")
    assert handler.counts() == {e: 1 for e, _ in people if e not in ("c@example.org", "d@example.org")}
    # b asked again after its 451 (once more if that retry went to the connection that was ending).
    assert handler.rcpts["b@example.org"] >= 2
    assert handler.connections == 3  # the probe, the first connection, the one after the drop


@pytest.mark.parametrize(("flag", "window"), [(["--window", "3"], 3), ([], 10), (["--window", "1"], 1)])
def test_the_window_of_a_send(
    ws: Path, run: Run, smtp_env: Callable[..., None], flag: list[str], window: int
) -> None:
    people = [(f"r{n}@example.org", f"R {n}") for n in range(12)]
    handler = Handler(pipelining=True, chunking=True, hold=0.2)
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", *flag)
    assert result.exit_code == 0, result.stderr
    assert handler.unanswered_max == window
    assert handler.counts() == {e: 1 for e, _ in people}
    assert {v[0] for v in journal_rows(ws).values()} == {"sent"}


def test_the_window_from_the_environment(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    people = [(f"r{n}@example.org", f"R {n}") for n in range(6)]
    handler = Handler(pipelining=True, chunking=True, hold=0.2)
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port, DIGEST_SEND_WINDOW="2")
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
    assert result.exit_code == 0, result.stderr
    assert handler.unanswered_max == 2


def test_a_window_of_zero_is_a_usage_error(ws: Path, run: Run) -> None:
    result = run("send", *MONTH, "--subscribers", "x.csv", "--window", "0")
    assert result.exit_code == 2
    assert "--window" in result.stderr


def test_killed_mid_send_re_sends_at_most_connections_times_window(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """SIGKILL while BDAT transactions are in flight; each resume re-sends only what the journal lacked."""
    total, connections, window, kills = 200, 2, 4, 8
    people = [(f"p{n:03d}@example.org", f"Person {n}") for n in range(total)]
    csv = subscribers(ws, people)
    rng = random.Random(20210316)
    handler = Handler(pipelining=True, chunking=True, delay=0.01)
    unrecorded_at_kill: list[int] = []
    with Server(handler) as server:
        smtp_env(server.port)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        command = [sys.executable, "-m", "digest", "--now", NOW, "-q", "send", *MONTH]
        command += ["--subscribers", str(csv), "--yes", "--connections", str(connections)]
        command += ["--window", str(window), "--retry-delay", "0.05"]
        for _ in range(kills):
            want = len(handler.received) + rng.randint(3, 20)
            proc = subprocess.Popen(
                command, cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 20
            while len(handler.received) < want and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            proc.kill()
            proc.wait(10)
            time.sleep(0.3)  # let the server finish with what reached it
            sent = {k for k, (s, *_r) in journal_rows(ws).items() if s == "sent"}
            counts = handler.counts()
            assert sent <= set(counts)  # nothing is marked sent that the server did not accept
            unrecorded = set(counts) - sent
            unrecorded_at_kill.append(len(unrecorded))
            assert len(unrecorded) <= connections * window, unrecorded
        final = subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        counts = handler.counts()
    assert set(counts) == {e for e, _ in people}
    assert sum(counts.values()) - total <= sum(unrecorded_at_kill)
    assert max(unrecorded_at_kill) > connections  # more than one message per connection was in flight


# ---- the journal's promise under the window: results recorded before the next message goes ----


@pytest.mark.parametrize(
    ("offers", "window"),
    [({"pipelining": True}, 1), ({"pipelining": True, "chunking": True}, 1)],
    ids=["data", "bdat-window-1"],
)
def test_a_result_that_cannot_be_recorded_stops_what_is_not_yet_handed_over(
    ws: Path, smtp_env: Callable[..., None], offers: dict[str, bool], window: int
) -> None:
    import resource

    from digest import send as sending
    from digest.config import load_config
    from digest.errors import SendError

    wal = ws / "out" / "2021-03" / "journal.sqlite-wal"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = Handler(**offers)
    original = handler.handle_DATA

    async def disk_full_now(server_: Any, session: Any, envelope: Any) -> str:
        if handler.data_ends == 0:  # the first message's data: no file of this process may grow from now
            resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size, hard))
        return await original(server_, session, envelope)

    handler.handle_DATA = disk_full_now  # type: ignore[method-assign]
    people = [(f"r{n}@example.org", f"R {n}") for n in range(6)]
    with Server(handler) as server:
        smtp_env(server.port, DIGEST_SEND_WINDOW=str(window))
        try:
            with pytest.raises(SendError, match="cannot write the send journal"):
                sending.run(
                    load_config(cwd=ws),
                    ws / "out" / "2021-03",
                    subscribers(ws, people),
                    now=datetime.fromisoformat(NOW),
                )
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    # The first result could not be kept: nothing went after it but what was already unanswered.
    assert handler.data_ends == window
    assert {s for s, *_ in journal_rows(ws).values()} == {"pending"}


@pytest.mark.parametrize(
    ("offers", "window"),
    [({"pipelining": True}, 1), ({"pipelining": True, "chunking": True}, 3)],
    ids=["data", "bdat"],
)
def test_ctrl_c_records_what_was_handed_over_and_sends_nothing_more(
    ws: Path, smtp_env: Callable[..., None], offers: dict[str, bool], window: int
) -> None:
    import signal

    from digest import send as sending
    from digest.config import load_config

    # Replies held back: by the time the first one comes, the client has handed over all its window may.
    handler = Handler(**offers, hold=1.0)
    original = handler.handle_DATA

    async def interrupt_at_the_first(server_: Any, session: Any, envelope: Any) -> str:
        if handler.data_ends == 0:
            # To the main thread, where the send's own handler runs: stop, finish what was handed over.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        return await original(server_, session, envelope)

    handler.handle_DATA = interrupt_at_the_first  # type: ignore[method-assign]
    people = [(f"r{n}@example.org", f"R {n}") for n in range(10)]
    with Server(handler) as server:
        smtp_env(server.port, DIGEST_SEND_WINDOW=str(window))
        with pytest.raises(KeyboardInterrupt):
            sending.run(
                load_config(cwd=ws),
                ws / "out" / "2021-03",
                subscribers(ws, people),
                now=datetime.fromisoformat(NOW),
            )
    # What was handed over arrived and is recorded; nothing more went (with DATA, the second message's
    # envelope was accepted, but its data is not sent after Ctrl-C).
    sent = {k for k, (s, *_r) in journal_rows(ws).items() if s == "sent"}
    assert set(handler.counts()) == sent
    # How many were handed over before the interrupt depends on the machine's pace (a loaded machine may
    # have written fewer than its window when the server takes the first): never more than the window.
    assert 1 <= len(sent) <= window


def test_a_421_mid_window_keeps_the_replies_behind_it(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    # The server says 421 to the second message's data but goes on with the two written behind it: their
    # replies are read and recorded before the connection is given up, never sent twice.
    people = [(f"r{n}@example.org", f"R {n}") for n in range(6)]
    handler = Handler(pipelining=True, chunking=True, data_faults=["", "421 4.3.2 closing soon"])
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run(
            "send", *MONTH, "--subscribers", str(csv), "--yes", "--window", "3", "--retry-delay", "0.01"
        )
    assert result.exit_code == 0, result.stderr
    assert handler.counts() == {e: 1 for e, _ in people}
    assert {v[0] for v in journal_rows(ws).values()} == {"sent"}
    assert handler.connections == 3  # the probe, the first, the one after the 421


def test_the_bytes_bdat_sends_are_the_message_unstuffed() -> None:
    wire = b"..first line\r\nSubject: x\r\n\r\n..\r\n...\r\n.a..b\r\n.\r\n"
    assert Outgoing("a@example.org", "<id@example.org>", wire).data == (
        b".first line\r\nSubject: x\r\n\r\n.\r\n..\r\n.a..b\r\n"
    )


def test_the_connection_does_not_wait_to_fill_segments() -> None:
    # Each write is whole; Nagle would hold its tail back a round trip on a real link.
    with Server(Handler(pipelining=True)) as server:
        s = open_session(server.port)
        try:
            assert s.conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            s.close()


def test_one_journal_write_per_message(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    # The write that proves the journal writable before a hand-over is the last result's own: no second
    # write per message. Counted in pages the journal's WAL grew by, between two messages' arrivals.
    wal = ws / "out" / "2021-03" / "journal.sqlite-wal"
    handler = Handler(pipelining=True)
    grown: list[int] = []
    original = handler.handle_DATA

    async def measure(server_: Any, session: Any, envelope: Any) -> str:
        grown.append(wal.stat().st_size)
        return await original(server_, session, envelope)

    handler.handle_DATA = measure  # type: ignore[method-assign]
    csv = subscribers(ws, [(f"r{n}@example.org", f"R {n}") for n in range(20)])
    with Server(handler) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(csv), "--yes").exit_code == 0
    frames = (grown[15] - grown[5]) / (4096 + 24)  # WAL frames: a 24-byte header and a page each
    assert 8 <= frames <= 12, frames  # ten results between the two; two writes each would be twenty
