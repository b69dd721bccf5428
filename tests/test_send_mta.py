"""The send against a real MTA that offers PIPELINING: Exim 4 on loopback (tests/mta.py), so both pipelined
paths meet a server that was not written for these tests. Each test runs twice: against an Exim that offers
CHUNKING (`[bdat]`: RSET, MAIL, RCPT, BDAT LAST, a window of them) and one that does not (`[data]`: each
message's data goes with the next one's MAIL, RCPT and DATA). Faults are Exim's own ACLs.

Skipped only when Exim is not installed and DIGEST_REQUIRE_TOOLS is unset (CI sets it: there a missing Exim
fails). Install it with `apt-get install -y --no-install-recommends exim4-daemon-light`.
"""

from __future__ import annotations

import functools
import os
import re
import smtplib
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import Result
from conftest import NOW, require_tool
from mta import EXIM, INSTALL, Delivered, Exim, start_exim
from smtpserver import MONTH, Handler, Msg, Server, deliver_all, journal_rows, subscribers

Run = Callable[..., Result]
StartExim = Callable[..., AbstractContextManager[Exim]]


@pytest.fixture(params=[True, False], ids=["bdat", "data"])
def exim(request: pytest.FixtureRequest) -> Iterator[StartExim]:
    """start_exim offering CHUNKING or not (the test runs once each way); skipped (or failed, with
    DIGEST_REQUIRE_TOOLS=1) when Exim is not installed."""
    require_tool(EXIM, INSTALL)
    yield functools.partial(start_exim, chunking=request.param)


def counts(delivered: list[Delivered]) -> Counter[str]:
    """Recipient -> how many messages were filed for it."""
    return Counter(d.recipient for d in delivered)


def carried_by(server: Exim, d: Delivered) -> str:
    """The command that must have carried `d`'s data: BDAT announcing its size, or DATA."""
    return f"BDAT {len(d.received)} LAST" if server.chunking else "DATA"


def data_stage(server: Exim) -> str:
    """The stage a refusal of the data is recorded at."""
    return "BDAT" if server.chunking else "end of DATA"


def assert_clean(server: Exim, messages: int) -> None:
    """Exim's log has `messages` received, each pipelined (its "L" flag without the "-" of PIPELINING
    offered but not used) and by BDAT exactly when it offered CHUNKING, and no protocol complaint (data
    written before its 354, a command it did not offer)."""
    pipelined = [any(f.startswith("L") and not f.endswith("-") for f in flags) for flags in server.accepted()]
    assert pipelined == [True] * messages
    assert [("K" in flags) for flags in server.accepted()] == [server.chunking] * messages
    log = server.log()
    assert "synchronization error" not in log
    assert "protocol error" not in log


# ---- one Session driven by hand: Exim's replies to pipelined transactions ----


def test_exim_offers_pipelining_and_chunking_when_asked(exim: StartExim) -> None:
    with exim() as server:
        conn = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
        try:
            conn.ehlo()
            assert conn.has_extn("chunking") == server.chunking
            assert conn.has_extn("pipelining")
        finally:
            conn.quit()


def test_a_window_of_pipelined_transactions_with_faults_between_them(exim: StartExim) -> None:
    # Faults back to back and before messages that must go through, pipelined: after a refused RCPT Exim
    # keeps the sender (the next MAIL would be "503 sender already given"), hence the RSET before each BDAT
    # transaction and after a DATA refused; without it "b" would be recorded as refused at MAIL FROM. With
    # DATA, Exim answers the DATA of a transaction whose only RCPT it refused "503 Valid RCPT command must
    # precede DATA" (RFC 2920's 503): the refusal recorded is the RCPT's.
    dotted = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\n" + b"x" * 3000 + b"\r\nend\r\n"
    names = ["a", "later", "nouser", "b", "badcontent", "c", "busy", "d", "e"]
    messages = [Msg(f"{n}@example.org", dotted) for n in names]
    with exim(
        defer={"later@example.org"},
        deny={"nouser@example.org"},
        data_deny={"badcontent@example.org"},
        data_defer={"busy@example.org"},
    ) as server:
        replies = deliver_all(server.port, messages, window=4, timeout=10)
        delivered = server.deliver()
        assert_clean(server, 5)
    shown = [(r, re.sub(r"^250 .*OK id=.*", "250 OK", o, flags=re.S)) for r, o in replies]
    assert shown == [
        ("a@example.org", "250 OK"),
        ("later@example.org", "RCPT TO: 451"),
        ("nouser@example.org", "RCPT TO: 550"),
        ("b@example.org", "250 OK"),
        ("badcontent@example.org", f"{data_stage(server)}: 550"),
        ("c@example.org", "250 OK"),
        ("busy@example.org", f"{data_stage(server)}: 451"),
        ("d@example.org", "250 OK"),
        ("e@example.org", "250 OK"),
    ]
    assert counts(delivered) == {f"{n}@example.org": 1 for n in "abcde"}
    for d in delivered:
        # The bytes made, the long line whole: BDAT needs no dot-stuffing, Exim undid DATA's.
        assert d.received == dotted
        assert d.command == carried_by(server, d)


# ---- the whole send ----


def _send(run: Run, csv: Path, *more: str) -> Result:
    return run("send", *MONTH, "--subscribers", str(csv), "--yes", *more)


def test_a_send_over_exim_delivers_the_bytes_digest_made_once_each(
    ws: Path, run: Run, smtp_env: Callable[..., None], exim: StartExim
) -> None:
    # A greeting line starting with "." and a long name make lines a careless transfer would change.
    people = [(f"{x}@example.org", x.upper()) for x in "abcdef"] + [("long@example.org", "L" * 400)]
    csv = subscribers(ws, people)
    with exim() as server:
        smtp_env(server.port, DIGEST_GREETING=".Hi {name},")
        assert run("build", *MONTH).exit_code == 0  # built with that greeting, as a send wants
        result = _send(run, csv, "--window", "3")
        delivered = server.deliver()
        assert_clean(server, len(people))
    assert result.exit_code == 0, result.stderr
    rows = journal_rows(ws)
    assert {k: v[0] for k, v in rows.items()} == {e: "sent" for e, _ in people}
    assert counts(delivered) == {e: 1 for e, _ in people}
    got = {d.recipient: d for d in delivered}
    for email, _name in people:
        d = got[email]
        assert d.command == carried_by(server, d)  # with BDAT, the size it announced is what came
        msg = message_from_bytes(d.received, policy=policy.default)
        assert rows[email][3] == msg["Message-ID"]
        assert re.search(rb"(?m)^\.Hi ", d.received)
    # What digest meant to send: the same send, made again, as our own server receives it over DATA.
    (ws / "out/2021-03/journal.sqlite").unlink()
    handler = Handler(pipelining=True)
    with Server(handler) as plain:
        smtp_env(plain.port, DIGEST_GREETING=".Hi {name},")
        assert _send(run, csv).exit_code == 0
    made = {rcpts[0]: raw for rcpts, raw in handler.received}
    assert {e: d.received for e, d in got.items()} == made
    assert max(len(line) for line in made["long@example.org"].split(b"\r\n")) > 76


def test_exim_faults_in_a_send_land_on_the_right_subscribers(
    ws: Path, run: Run, smtp_env: Callable[..., None], exim: StartExim
) -> None:
    people = [(f"{x}@example.org", x.upper()) for x in "abcdefgh"]
    csv = subscribers(ws, people)
    with exim(
        defer={"b@example.org"},
        deny={"c@example.org"},
        data_deny={"d@example.org"},
        data_defer={"e@example.org"},
    ) as server:
        smtp_env(server.port)
        result = _send(run, csv, "--window", "4", "--retries", "2", "--retry-delay", "0.01")
        delivered = server.deliver()
        log = server.log()
        assert_clean(server, len(people) - 4)
    assert result.exit_code == 1, result.stderr
    rows = journal_rows(ws)
    assert {k: v[0] for k, v in rows.items()} == {
        **{e: "sent" for e, _ in people},
        "b@example.org": "deferred",
        "c@example.org": "failed",
        "d@example.org": "failed",
        "e@example.org": "deferred",
    }
    stage = data_stage(server)
    assert rows["b@example.org"][1:3] == (451, "RCPT TO: 4.2.0 try again later")
    assert rows["c@example.org"][1:3] == (550, "RCPT TO: 5.1.1 no such user")
    assert rows["d@example.org"][1:3] == (550, f"{stage}: 5.6.0 content refused")
    assert rows["e@example.org"][1:3] == (451, f"{stage}: 4.3.0 content deferred")
    assert counts(delivered) == {e: 1 for e, _ in people if e[0] not in "bcde"}
    # b and e were asked again on each retry, and each time Exim said 451: to b's RCPT, after e's data.
    assert log.count("temporarily rejected RCPT <b@example.org>") == 3
    assert len(re.findall(r"F=<[^>]*> temporarily rejected after DATA: 4\.3\.0", log)) == 3


def _sent_now(ws: Path) -> set[str]:
    """The keys the journal records as sent; none while the send has not made its journal yet."""
    path = ws / "out" / "2021-03" / "journal.sqlite"
    if not path.exists():
        return set()
    db = sqlite3.connect(path, timeout=10)
    try:
        return {k for (k,) in db.execute("select key from recipients where status = 'sent'")}
    except sqlite3.OperationalError:  # the table is not made yet
        return set()
    finally:
        db.close()


def test_a_send_killed_mid_window_resumes_without_re_sending_what_exim_accepted(
    ws: Path, smtp_env: Callable[..., None], exim: StartExim
) -> None:
    total, window = 60, 4
    people = [(f"p{n:02d}@example.org", f"Person {n}") for n in range(total)]
    csv = subscribers(ws, people)
    command = [sys.executable, "-m", "digest", "--now", NOW, "-q", "send", *MONTH]
    command += ["--subscribers", str(csv), "--yes", "--window", str(window)]
    # Exim takes 2 s over p12's data: p12 and the messages behind it in the window are in flight, their
    # results unrecorded, when the kill comes.
    with exim(slow={"p12@example.org"}) as server:
        smtp_env(server.port)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen(
            command, cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if len(_sent_now(ws)) >= 12:
                break
            time.sleep(0.01)
        proc.kill()
        proc.wait(10)
        recorded = _sent_now(ws)
        assert 12 <= len(recorded) < total  # killed while p12 was being answered
        final = subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        delivered = counts(server.deliver())
        assert_clean(server, sum(delivered.values()))
    assert set(delivered) == {e for e, _ in people}
    assert all(delivered[e] == 1 for e in recorded)  # nothing recorded as sent went again
    # Only what was in flight, unrecorded, at the kill may have gone twice: at most the window with BDAT, the
    # one message whose data was written with DATA (the next one's envelope, written with it, has no data).
    assert sum(delivered.values()) - total <= (window if server.chunking else 1)
