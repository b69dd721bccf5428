"""The send's run against a real SMTP server on 127.0.0.1 (aiosmtpd): delivery, faults injected by the
server, the journal, resuming, the folder lock."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import Result
from conftest import NOW, write_item
from smtpserver import (
    MONTH,
    PEOPLE,
    SECRET,
    Handler,
    Server,
    free_port,
    journal_rows,
    login_checker,
    normalised,
    server_tls_context,
    subscribers,
)

from digest.tokens import check_unsubscribe_token

Run = Callable[..., Result]


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) of a received multipart/alternative message."""
    assert msg.get_content_type() == "multipart/alternative"
    text, html = list(msg.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    return text.get_content(), html.get_content()


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_send_delivers_one_personalised_message_to_each(
    ws: Path, run: Run, smtp_env: Callable[..., None], pipelining: bool
) -> None:
    csv = subscribers(ws, PEOPLE)
    with Server(Handler(pipelining=pipelining)) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--connections", "2")
        assert result.exit_code == 0, result.stderr
        got = server.handler.messages()
        raws = {r[0]: raw for r, raw in server.handler.received}
    assert sorted(got) == sorted(normalised(e) for e, _ in PEOPLE)
    assert "4 sent, 0 failed, 0 deferred, 0 suppressed in this run" in result.stderr
    journal = journal_rows(ws)
    ids = set()
    for address, name in PEOPLE:
        email = normalised(address)
        msg, raw = got[email], raws[email]
        assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF in the message"
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        assert not msg.defects
        assert msg["From"] == "Co-operative News <news@example.org>"
        assert msg["Reply-To"] == "Communications team <communications@example.org>"
        assert msg["Subject"] == "Co-operative News Digest: March 2021"
        assert msg["Date"]
        assert msg["To"].addresses[0].addr_spec == email
        assert msg["To"].addresses[0].display_name == name
        assert msg["List-Id"] == "Co-operative News Digest <co-operative-news-digest.example.org>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
        token = re.fullmatch(r"https://example\.org/unsubscribe\?u=([A-Za-z0-9_-]+\.[0-9a-f]{32})", https)
        assert token is not None
        assert email not in https and "%40" not in https  # no address in the link
        assert check_unsubscribe_token(SECRET, email, token[1])
        assert not check_unsubscribe_token(SECRET, "someone@else.org", token[1])
        assert mailto == "mailto:unsubscribe@example.org?subject=unsubscribe"
        text, html = parts(msg)
        greeting = f"Hello {name}," if name else "Hello,"
        assert greeting in text.splitlines()
        assert f"Unsubscribe:\r\n{https}\r\n" in text  # the link on a line of its own: never wrapped
        assert f'href="{https.replace("&", "&amp;")}"' in html
        if name.startswith("<b>"):
            assert "Hello &lt;b&gt;Xavier &amp; Co&lt;/b&gt;," in html and "<b>Xavier" not in html
        else:
            assert re.search(f"<p[^>]*>{re.escape(greeting)}</p>", html)
        assert "__DIGEST_" not in text + html
        assert "ILO COOP participates in two parallel events at CSW65" in text
        ids.add(msg["Message-ID"])
        assert journal[email.lower()][0] == "sent"
        assert journal[email.lower()][2] == "250 2.0.0 Ok: queued as TEST"
        assert journal[email.lower()][3] == msg["Message-ID"]
    assert len(ids) == len(PEOPLE)


def test_resume_sends_only_to_those_not_yet_sent(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    csv = subscribers(ws, PEOPLE[:2])
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(csv), "--yes").exit_code == 0
        first_ids = {
            m["To"].addresses[0].addr_spec: m["Message-ID"] for m in server.handler.messages().values()
        }
        csv = subscribers(ws, PEOPLE)  # two more people joined
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        assert "2 sent, 0 failed, 0 deferred, 0 suppressed in this run (2 done before" in result.stderr
        assert sorted(server.handler.counts().values()) == [1, 1, 1, 1]
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
        assert "0 sent" in again.stderr
        assert len(server.handler.received) == 4
    status = run("send", *MONTH, "--subscribers", str(csv), "--status")
    assert status.exit_code == 0
    assert status.stdout == "out/2021-03/journal.sqlite: 4 sent, 0 failed, 0 deferred, 0 pending (complete)\n"
    # A resend of the same digest to the same address carries the same Message-ID (recognisable).
    journal = journal_rows(ws)
    assert journal["ann@example.org"][3] == first_ids["ann@example.org"]


def test_starttls_with_a_trusted_certificate_and_login(
    ws: Path, run: Run, smtp_env: Callable[..., None], tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler = Handler()
    options = {
        "tls_context": server_tls_context(ca.issue_cert("127.0.0.1")),
        "require_starttls": True,
        "auth_required": True,
        "authenticator": login_checker("digest", "s3cret-pw"),
    }
    csv = subscribers(ws, PEOPLE[:2])
    with Server(handler, **options) as server:
        smtp_env(
            server.port,
            "starttls",
            DIGEST_SMTP_USERNAME="digest",
            DIGEST_SMTP_PASSWORD="s3cret-pw",
            DIGEST_SMTP_CA_FILE=str(ca_file),
        )
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        assert sorted(handler.counts()) == ["ann@example.org", "bob@example.org"]
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert b"s3cret-pw" not in b"".join(p.read_bytes() for p in (ws / "out").rglob("*") if p.is_file())


def test_implicit_tls_with_a_trusted_certificate(
    ws: Path, run: Run, smtp_env: Callable[..., None], tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler = Handler()
    csv = subscribers(ws, PEOPLE[:1])
    with Server(handler, ssl_context=server_tls_context(ca.issue_cert("127.0.0.1"))) as server:
        smtp_env(server.port, "ssl", DIGEST_SMTP_CA_FILE=str(ca_file))
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
    assert result.exit_code == 0, result.stderr
    assert handler.counts() == {"ann@example.org": 1}


def test_the_ca_file_adds_to_the_system_certificates_not_replaces_them(
    ws: Path, run: Run, smtp_env: Callable[..., None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay's certificate comes from a CA in the "system" store (OpenSSL reads SSL_CERT_FILE); the
    # private relay's CA is the extra file. Both must be trusted.
    system, private = trustme.CA(), trustme.CA()
    system.cert_pem.write_to_path(str(tmp_path / "system.pem"))
    private.cert_pem.write_to_path(str(tmp_path / "private.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "system.pem"))
    options = {"tls_context": server_tls_context(system.issue_cert("127.0.0.1")), "require_starttls": True}
    with Server(Handler(), **options) as server:
        smtp_env(server.port, "starttls", DIGEST_SMTP_CA_FILE=str(tmp_path / "private.pem"))
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:1])), "--yes")
        assert result.exit_code == 0, result.stderr
        assert server.handler.counts() == {"ann@example.org": 1}


def test_the_ca_file_in_the_config_is_relative_to_it(
    ws: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    (ws / "certs").mkdir()
    ca.cert_pem.write_to_path(str(ws / "certs" / "relay-ca.pem"))
    config = ws / "digest.toml"
    config.write_text(config.read_text() + '\n[smtp]\nca_file = "certs/relay-ca.pem"\n')
    csv = subscribers(ws, PEOPLE[:1])
    monkeypatch.chdir(ws / "items")  # the config is found in the parent; its paths are relative to it
    options = {"tls_context": server_tls_context(ca.issue_cert("127.0.0.1")), "require_starttls": True}
    with Server(Handler(), **options) as server:
        smtp_env(server.port, "starttls")
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        assert server.handler.counts() == {"ann@example.org": 1}
    (ws / "certs" / "relay-ca.pem").write_text("not a certificate\n")
    bad = run("send", *MONTH, "--subscribers", str(csv), "--yes")
    assert bad.exit_code == 1
    assert bad.stderr.startswith(
        f"Error: smtp.ca_file (DIGEST_SMTP_CA_FILE): {ws / 'certs' / 'relay-ca.pem'}: not PEM CA certificates ("
    )


def test_an_untrusted_certificate_stops_before_anything_is_sent(
    ws: Path, run: Run, smtp_env: Callable[..., None], tmp_path: Path
) -> None:
    trusted, other = trustme.CA(), trustme.CA()
    ca_file = tmp_path / "ca.pem"
    trusted.cert_pem.write_to_path(str(ca_file))
    handler = Handler()
    csv = subscribers(ws, PEOPLE)
    tls = server_tls_context(other.issue_cert("127.0.0.1"))
    with Server(handler, tls_context=tls, require_starttls=True) as server:
        smtp_env(server.port, "starttls", DIGEST_SMTP_CA_FILE=str(ca_file))
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
    assert result.exit_code == 1
    assert re.fullmatch(
        r"Error: 127\.0\.0\.1:\d+: the server's certificate is not trusted: .*; nothing was sent\n",
        result.stderr,
    ), result.stderr
    assert handler.received == []
    assert {s for s, *_ in journal_rows(ws).values()} == {"pending"}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_a_refused_login_stops_at_once(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    handler = Handler()
    csv = subscribers(ws, PEOPLE)
    options = {
        "auth_required": True,
        "auth_require_tls": False,
        "authenticator": login_checker("digest", "right"),
    }
    # (aiosmtpd warns about AUTH without TLS: on loopback in a test that is the point.)
    with Server(handler, **options) as server:
        smtp_env(server.port, DIGEST_SMTP_USERNAME="digest", DIGEST_SMTP_PASSWORD="wrong-password")
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
    assert result.exit_code == 1
    assert re.fullmatch(
        r"Error: 127\.0\.0\.1:\d+ refused the login of 'digest': 535 .*; nothing was sent\n", result.stderr
    ), result.stderr
    assert "wrong-password" not in result.stderr
    assert handler.received == []
    assert {s for s, *_ in journal_rows(ws).values()} == {"pending"}


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_temporary_failures_are_retried_and_the_message_arrives_once(
    ws: Path, run: Run, smtp_env: Callable[..., None], pipelining: bool
) -> None:
    handler = Handler(
        pipelining=pipelining, data_faults=["421 4.3.2 try later", "451 4.3.0 busy", "451 busy"]
    )
    csv = subscribers(ws, PEOPLE)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
    assert result.exit_code == 0, result.stderr
    assert handler.data_faults == []  # every fault was served
    assert handler.counts() == {e.lower(): 1 for e, _ in PEOPLE}


def test_temporary_failures_past_the_retries_are_deferred_and_retried_by_the_next_run(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    handler = Handler(data_faults=["451 busy"] * 3)
    csv = subscribers(ws, PEOPLE[:1])
    with Server(handler) as server:
        smtp_env(server.port)
        result = run(
            "send", *MONTH, "--subscribers", str(csv), "--yes", "--retries", "2", "--retry-delay", "0"
        )
        assert result.exit_code == 1
        assert result.stderr.endswith(
            "Error: 1 recipient did not get the digest (0 refused, 1 deferred: run again to retry those)\n"
        )
        # Said as a failed one is: "stage: text", the code in its own column.
        assert journal_rows(ws)["ann@example.org"][:3] == ("deferred", 451, "end of DATA: busy")
        assert run("build", "--since-last-send").exit_code == 1  # not sent in full yet
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
    assert handler.counts() == {"ann@example.org": 1}
    nothing_new = run("build", "--since-last-send")
    assert nothing_new.exit_code == 3  # sent in full now; no item since March's newest
    # From the day of March's newest item (31 March), whose items all went out.
    assert nothing_new.stderr == "Nothing to do: no items between 2021-03-31 and 2021-04-15: nothing built\n"


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_a_550_for_one_address_is_recorded_and_the_others_arrive(
    ws: Path, run: Run, smtp_env: Callable[..., None], pipelining: bool
) -> None:
    handler = Handler(
        pipelining=pipelining, refuse={"bob@example.org": "550 5.1.1 <bob@example.org>: no such user"}
    )
    csv = subscribers(ws, PEOPLE)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 1
        assert "3 sent, 1 failed, 0 deferred, 0 suppressed in this run" in result.stderr
        assert "  Bob@example.org: 550 RCPT TO: 5.1.1 <bob@example.org>: no such user\n" in result.stderr
        assert result.stderr.endswith(
            "Error: 1 recipient did not get the digest (1 refused, 0 deferred: run again to retry those)\n"
        )
        assert sorted(handler.counts()) == ["ann@example.org", "x@example.com", "zoe@example.net"]
        assert handler.rcpts["bob@example.org"] == 1  # refused once, not tried again in the same run
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")  # a refusal is final: not retried
        assert len(handler.received) == 3
        assert handler.rcpts["bob@example.org"] == 1  # nor by the next run
    assert again.exit_code == 1
    assert journal_rows(ws)["bob@example.org"][:2] == ("failed", 550)


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_a_refused_data_command_ends_the_transaction_and_the_send_goes_on(
    ws: Path, run: Run, smtp_env: Callable[..., None], pipelining: bool
) -> None:
    # The server answers DATA itself (not the message) with 451 once, then 554 for Bob's transaction, and
    # keeps the transaction open as real servers do: without an RSET the next MAIL FROM gets a 503.
    handler = Handler(
        pipelining=pipelining,
        data_command_faults=["451 4.3.0 try again later"],
        data_command_refuse={"bob@example.org": "554 5.7.1 not for bob"},
    )
    csv = subscribers(ws, PEOPLE)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
    assert result.exit_code == 1, result.stderr
    assert "3 sent, 1 failed, 0 deferred, 0 suppressed in this run" in result.stderr
    assert "  Bob@example.org: 554 DATA: 5.7.1 not for bob\n" in result.stderr
    assert "refused the sender" not in result.stderr
    assert handler.data_command_faults == []
    assert handler.counts() == {"ann@example.org": 1, "zoe@example.net": 1, "x@example.com": 1}
    assert journal_rows(ws)["bob@example.org"][:2] == ("failed", 554)


def test_a_503_to_mail_from_is_not_a_refused_sender(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    handler = Handler(mail_faults=["503 5.5.1 Error: nested MAIL command"])
    csv = subscribers(ws, PEOPLE)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
    assert result.exit_code == 0, result.stderr
    assert handler.mail_faults == []
    assert handler.counts() == {e.lower(): 1 for e, _ in PEOPLE}


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_a_dropped_connection_is_reopened_and_nothing_is_lost(
    ws: Path, run: Run, smtp_env: Callable[..., None], pipelining: bool
) -> None:
    many = [(f"reader{n}@example.org", f"Reader {n}") for n in range(12)]
    handler = Handler(pipelining=pipelining)
    csv = subscribers(ws, many)
    with Server(handler) as server:
        smtp_env(server.port)
        handler.data_faults = [""] * 0
        # Let five messages through on the first connection, then drop it in the middle of the sixth.
        original = handler.handle_DATA
        seen = {"n": 0}

        async def dropping(server_: object, session: object, envelope: object) -> str:
            seen["n"] += 1
            if seen["n"] in (6, 9):
                handler.data_faults.insert(0, "drop")
            return await original(server_, session, envelope)  # type: ignore[arg-type]

        handler.handle_DATA = dropping  # type: ignore[method-assign]
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
    assert result.exit_code == 0, result.stderr
    assert seen["n"] == 14  # 12 messages and two that were cut off
    assert handler.counts() == {e: 1 for e, _ in many}


def test_an_unreachable_server_stops_with_a_clear_error(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    port = free_port()
    smtp_env(port)
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot connect to 127.0.0.1:{port}: ")
    assert result.stderr.endswith("; nothing was sent\n")


def test_the_default_greeting_needs_no_name_column(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    (ws / "subscribers.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", "subscribers.csv", "--yes")
        assert result.exit_code == 0, result.stderr
        text, _html = parts(server.handler.messages()["ann@example.org"])
    assert "Hello," in text.splitlines()


def test_resuming_with_changed_content_is_refused_unless_allowed(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler(refuse={"bob@example.org": "450 mailbox busy"})) as server:
        smtp_env(server.port)
        csv = subscribers(ws, PEOPLE)
        first = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retries", "0")
        assert first.exit_code == 1  # Bob deferred
        write_item(
            ws / "items",
            "late.md",
            """
            ---
            title: A late March item
            date: 2021-03-30
            category: News
            summary: Added after the send began.
            ---
            """,
        )
        assert run("build", *MONTH).exit_code == 0
        refused = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert refused.exit_code == 1
        assert "3 recipients already got a different version of this digest" in refused.stderr
        assert "pass --allow-changed" in refused.stderr
        assert len(server.handler.received) == 3
        server.handler.refuse.clear()
        allowed = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--allow-changed")
        assert allowed.exit_code == 0, allowed.stderr
        assert server.handler.counts()["bob@example.org"] == 1


def test_no_rebuild_while_a_send_holds_the_journal(ws: Path, run: Run) -> None:
    from digest.journal import Journal

    path = ws / "out" / "2021-03" / "journal.sqlite"
    with Journal(path):
        result = run("build", *MONTH)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: out/2021-03/: `digest send` is sending this digest right now; build again when it is done\n"
        )
    assert run("build", *MONTH).exit_code == 0
    assert path.exists()  # a rebuild keeps the journal


def test_no_rebuild_while_a_send_holds_the_folder_lock(ws: Path, run: Run) -> None:
    from digest.outdir import lock as folder_lock

    folder = ws / "out" / "2021-03"
    with folder_lock(folder, exclusive=False):  # as a send does from before it opens its journal
        result = run("build", *MONTH)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: out/2021-03/ is in use by another `digest build` or `digest send`; "
            "build again when it is done\n"
        )
    assert run("build", *MONTH).exit_code == 0
    assert not (ws / "out" / ".2021-03.lock").exists()  # the last holder removes it


def test_a_send_holds_the_folder_lock_while_it_sends(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    import fcntl

    lock = ws / "out" / ".2021-03.lock"
    handler = Handler()
    seen: list[str] = []
    original = handler.handle_DATA

    async def probing(server_: object, session: object, envelope: object) -> str:
        # What a `digest build` would find now, mid-send.
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            seen.append("no lock file")
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
            finally:
                os.close(fd)
        return await original(server_, session, envelope)  # type: ignore[arg-type]

    handler.handle_DATA = probing  # type: ignore[method-assign]
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
    assert result.exit_code == 0, result.stderr
    assert seen == ["held"] * len(PEOPLE)
    assert not lock.exists()


def test_a_send_waits_while_a_build_holds_the_folder_lock(
    ws: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import types

    from digest.outdir import folder as outdir
    from digest.outdir import lock as folder_lock

    building = contextlib.ExitStack()
    building.enter_context(folder_lock(ws / "out" / "2021-03", exclusive=True))
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the send found the lock taken: the build finishes meanwhile
        waits.append(seconds)
        building.close()

    monkeypatch.setattr(outdir, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
        assert result.exit_code == 0, result.stderr
        assert len(server.handler.received) == len(PEOPLE)
    assert len(waits) == 1


def test_a_send_gives_up_if_a_build_holds_the_folder_lock_too_long(
    ws: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.outdir import lock as folder_lock

    monkeypatch.setattr("digest.presend.LOCK_WAIT", 0.0)
    with folder_lock(ws / "out" / "2021-03", exclusive=True), Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: out/2021-03/ is in use by another `digest build` or `digest send`: a `digest build` of "
            "this digest is still writing it after 0 s; nothing was sent\n"
        )
        assert server.handler.received == []
    assert not (ws / "out" / "2021-03" / "journal.sqlite").exists()


def test_a_send_refuses_a_folder_rebuilt_after_it_was_read(
    ws: Path, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace
    from datetime import datetime

    from digest import send as sending
    from digest.config import load_config
    from digest.errors import OutputError

    real = sending.prepare

    def read_before_a_rebuild(*args: Any, **kwargs: Any) -> sending.Prepared:
        ready = real(*args, **kwargs)  # what the send read before a rebuild swapped another version in
        return replace(ready, content_hash="0" * 64)

    monkeypatch.setattr(sending, "prepare", read_before_a_rebuild)
    with Server(Handler()) as server:
        smtp_env(server.port)
        config = load_config(cwd=ws)
        with pytest.raises(
            OutputError, match="the digest was rebuilt just as this send began; nothing was sent"
        ):
            sending.run(
                config, ws / "out" / "2021-03", subscribers(ws, PEOPLE), now=datetime.fromisoformat(NOW)
            )
        assert server.handler.received == []
    assert not (ws / "out" / "2021-03" / "journal.sqlite").exists()


def _crash_mid_swap(ws: Path) -> Path:
    """Leave out/2021-03 as a build killed between its two renames does: moved aside, nothing in place."""
    aside = ws / "out" / ".2021-03.old-k1ll3d"
    aside.mkdir()
    os.replace(ws / "out" / "2021-03", aside / "2021-03")
    return aside


def test_a_send_after_a_build_killed_mid_swap_finds_its_journal(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:2])), "--yes").exit_code == 0
        aside = _crash_mid_swap(ws)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
        assert result.exit_code == 0, result.stderr
        assert "2 sent, 0 failed, 0 deferred, 0 suppressed in this run (2 done before" in result.stderr
        assert sorted(server.handler.counts().values()) == [1, 1, 1, 1]
    assert not aside.exists()
    assert "is not built yet" not in result.stderr  # the folder was put back, not rebuilt


def test_a_build_after_a_build_killed_mid_swap_keeps_the_journal(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:2])), "--yes").exit_code == 0
    _crash_mid_swap(ws)
    assert run("build", *MONTH).exit_code == 0
    assert {k: v[0] for k, v in journal_rows(ws).items()} == {
        "ann@example.org": "sent",
        "bob@example.org": "sent",
    }
    assert [p.name for p in (ws / "out").iterdir() if p.name.startswith(".")] == []


def test_journals_left_only_in_the_old_folder_are_carried_over(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    # Killed after both renames but before the old folder was removed, a journal only there (say a send
    # to a second list started and ended in between) must not be lost.
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:2])), "--yes").exit_code == 0
        aside = _crash_mid_swap(ws)
        import shutil

        shutil.copytree(aside / "2021-03", ws / "out" / "2021-03")
        (ws / "out" / "2021-03" / "journal.sqlite").unlink()
        again = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:2])), "--yes")
        assert again.exit_code == 0, again.stderr
        status = run("send", *MONTH, "--status")
        assert status.exit_code == 0, status.stderr
        assert (
            status.stdout
            == "out/2021-03/journal.sqlite: 2 sent, 0 failed, 0 deferred, 0 pending (complete)\n"
        )
        assert sorted(server.handler.counts().values()) == [1, 1]
    assert not aside.exists()


def test_build_since_last_send_starts_on_the_day_of_the_newest_item_sent(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    none_yet = run("build", "--since-last-send")
    assert none_yet.exit_code == 1
    assert none_yet.stderr == "Error: --since-last-send: no digest in out/ was sent to a whole list yet\n"
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert (
            run("send", *MONTH, "--subscribers", str(subscribers(workspace, PEOPLE)), "--yes").exit_code == 0
        )
    # The status of "the send since the last one" just after that send: the window after it has none yet.
    status = run("send", "--since-last-send", "--status")
    assert status.exit_code == 0, status.stderr
    assert status.stdout.startswith("out/2021-03/") and "(complete)" in status.stdout
    assert "out/2021-03-31_2021-04-15/ was not sent yet; the last digest sent in full: out/2021-03/\n" in (
        status.stderr
    )
    for name, day in (
        ("same-day.md", "2021-03-31"),
        ("next-day.md", "2021-04-01"),
        ("later.md", "2021-04-14"),
    ):
        _news(workspace, name, day)
    result = run("build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    # 31 March is the day of March's newest item: its item written since is new, March's own are not.
    assert "3 items in 1 category -> out/2021-03-31_2021-04-15/" in result.stderr
    manifest = json.loads((workspace / "out" / "2021-03-31_2021-04-15" / "manifest.json").read_text())
    assert [i["title"] for i in manifest["items"]] == [
        "Item of 2021-04-14",
        "Item of 2021-04-01",
        "Item of 2021-03-31",
    ]


def test_the_status_since_the_last_send_when_nothing_is_new_or_a_send_began(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """`send --since-last-send --status` shows the send in progress of the window after the last send in
    full when there is one, else that last send's, also when nothing can come after it (its newest item
    is dated ahead of now)."""
    _news(workspace, "ahead.md", "2021-04-20")  # after now (15 April): April's newest item
    csv = subscribers(workspace, PEOPLE)
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", "--month", "2021-04", "--subscribers", str(csv), "--yes").exit_code == 0
        nothing_new = run("send", "--since-last-send", "--status")
        assert nothing_new.exit_code == 0, nothing_new.stderr
        assert nothing_new.stdout.startswith("out/2021-04/") and "(complete)" in nothing_new.stdout
        assert "nothing new to send; the last digest sent in full: out/2021-04/\n" in nothing_new.stderr
    _news(workspace, "later.md", "2021-04-28")
    with Server(Handler(data_faults=["451 busy"] * 20)) as busy:
        smtp_env(busy.port)
        began = run(
            "--now", "2021-04-30T12:00:00+00:00", "send", "--since-last-send", "--subscribers", str(csv),
            "--yes", "--retries", "0",
        )  # fmt: skip
        assert began.exit_code == 1  # deferred: the send of the new window began, not finished
    status = run("--now", "2021-04-30T12:00:00+00:00", "send", "--since-last-send", "--status")
    assert status.exit_code == 0, status.stderr
    assert status.stdout.startswith("out/2021-04-20_2021-04-30/") and "deferred" in status.stdout
    assert "was not sent yet" not in status.stderr


def _news(workspace: Path, name: str, day: str) -> None:
    write_item(
        workspace / "items",
        name,
        f"""
        ---
        title: Item of {day}
        date: {day}
        category: News
        summary: Something.
        ---
        """,
    )


def test_since_last_send_is_what_was_sent_not_what_was_rebuilt_since(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    # March goes out without its 31 March item (written late); then the item is added and March rebuilt.
    # Nobody got that item: the next digest must start after what was sent, not after the rebuilt folder.
    late = next((workspace / "items").glob("2021-03-31-*.md"))
    late_text = late.read_text(encoding="utf-8")
    late.unlink()
    with Server(Handler()) as server:
        smtp_env(server.port)
        sent = run("send", *MONTH, "--subscribers", str(subscribers(workspace, PEOPLE)), "--yes")
        assert sent.exit_code == 0, sent.stderr
    late.write_text(late_text, encoding="utf-8")
    assert run("build", *MONTH).exit_code == 0
    result = run("build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    # The journal says what went out: from the day of the newest item sent, less the items sent.
    assert "-> out/2021-03-30_2021-04-15/" in result.stderr
    import json

    manifest = json.loads((workspace / "out" / "2021-03-30_2021-04-15" / "manifest.json").read_text())
    assert [i["date"] for i in manifest["items"]] == ["2021-03-31"]
    assert manifest["window"]["already_sent"]  # the items of 30 March that went out


def test_since_last_send_is_not_moved_back_by_an_older_digest_sent_late(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    _news(workspace, "april.md", "2021-04-10")
    with Server(Handler()) as server:
        smtp_env(server.port)
        first = subscribers(workspace, PEOPLE[:2])
        for month in ("2021-03", "2021-04"):
            assert run("send", "--month", month, "--subscribers", str(first), "--yes").exit_code == 0
        # A second list joins late and gets March, after April went out to the first list.
        late = subscribers(workspace, PEOPLE[2:], name="late.csv")
        assert run("send", *MONTH, "--subscribers", str(late), "--yes").exit_code == 0
    _news(workspace, "after.md", "2021-04-12")
    result = run("build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    # From the day of April's newest item (10 April), which went out: only the item after it.
    assert "1 item in 1 category -> out/2021-04-10_2021-04-15/" in result.stderr


def test_killed_twenty_times_and_resumed_nobody_is_lost(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """SIGKILL at random moments, 20 times; each resume may re-send only what was in flight at the kill."""
    total, connections, kills = 400, 2, 20
    people = [(f"p{n:03d}@example.org", f"Person {n}") for n in range(total)]
    csv = subscribers(workspace, people)
    assert run("build", *MONTH).exit_code == 0
    rng = random.Random(20210315)  # reproducible moments
    handler = Handler(delay=0.02)
    in_flight_at_kill: list[int] = []
    mid_send = 0
    with Server(handler) as server:
        smtp_env(server.port)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        command = [
            sys.executable,
            "-m",
            "digest",
            "--now",
            NOW,
            "-q",
            "send",
            *MONTH,
            "--subscribers",
            str(csv),
        ]
        command += ["--yes", "--connections", str(connections), "--retry-delay", "0.05"]
        for kill in range(kills):
            before = len(handler.received)
            proc = subprocess.Popen(
                command, cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            # Every other kill waits for a few messages of this run to arrive (so it strikes mid-send);
            # the others strike at a random time: during start-up, reading the list, connecting or sending.
            deadline = time.monotonic() + 20
            if kill % 2 == 0:
                want = before + rng.randint(1, 12)
                while len(handler.received) < want and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.001)
                time.sleep(rng.uniform(0, 0.01))
            else:
                time.sleep(rng.uniform(0.05, 0.8))
            proc.kill()
            proc.wait(10)
            assert proc.stderr is not None
            proc.stderr.close()
            time.sleep(0.1)  # let the server finish with what reached it
            counts = handler.counts()
            journal = journal_rows(workspace) if (workspace / "out/2021-03/journal.sqlite").exists() else {}
            sent = {k for k, (s, *_r) in journal.items() if s == "sent"}
            assert sent <= set(counts)  # nothing is marked sent that the server did not accept
            unrecorded = set(counts) - sent
            in_flight_at_kill.append(len(unrecorded))
            assert len(unrecorded) <= connections, unrecorded
            mid_send += len(handler.received) > before and len(sent) < total  # this run had begun sending
        final = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        counts = handler.counts()
    assert set(counts) == {e for e, _ in people}  # everybody got it
    duplicates = sum(counts.values()) - total
    assert duplicates <= sum(in_flight_at_kill)  # and only messages in flight at a kill came twice
    assert mid_send >= 10  # most kills struck in the middle of sending, not before or after it
    print(
        f"kills={kills} mid-send={mid_send} in-flight-at-kill={sum(in_flight_at_kill)} duplicates={duplicates}"
    )


def test_a_rate_limited_send_still_reaches_everyone(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run(
            "send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes", "--rate", "200/s"
        )
        assert result.exit_code == 0, result.stderr
        assert server.handler.counts() == {normalised(e).lower(): 1 for e, _ in PEOPLE}


def test_someone_taken_off_the_list_is_not_sent_and_does_not_hold_up_completion(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler(refuse={"ann@example.org": "452 mailbox full"})) as server:
        smtp_env(server.port)
        csv = subscribers(ws, PEOPLE[:3])
        first = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retries", "0")
        assert first.exit_code == 1  # Ann deferred
        csv = subscribers(ws, PEOPLE[1:3])  # Ann unsubscribed in the meantime
        server.handler.refuse.clear()
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert "ann@example.org" not in server.handler.counts()
    assert again.exit_code == 0, again.stderr  # her deferred row no longer counts
    assert run("build", "--since-last-send").exit_code == 3  # but the list as it is now got it in full


# ---- the send as a library call ----


def test_digest_send_runs_from_python_without_click(ws: Path, smtp_env: Callable[..., None]) -> None:
    from datetime import datetime

    from digest import send as sending
    from digest.config import load_config
    from digest.window import resolve

    calls: list[tuple[int, int]] = []
    plans: list[sending.Plan] = []
    with Server(Handler()) as server:
        smtp_env(server.port)
        config = load_config(cwd=ws, flags={"send.connections": 2})
        now = datetime.fromisoformat(NOW)
        window = resolve(tz=config.tz, locale=config.language, now=now, month_="2021-03")
        report = sending.run(
            config,
            window,
            subscribers(ws, PEOPLE),
            sending.SendOptions(retries=0),
            now=now,
            confirm=lambda plan: plans.append(plan) or True,
            progress=lambda done, todo: calls.append((done, todo)),
        )
        assert server.handler.counts() == {normalised(e).lower(): 1 for e, _ in PEOPLE}
    assert (report.sent, report.failed, report.deferred, report.already_done) == (4, 0, 0, 0)
    assert report.journal == ws / "out" / "2021-03" / "journal.sqlite"
    assert [p.todo for p in plans] == [4]
    assert plans[0].subject == "Co-operative News Digest: March 2021"
    assert calls[0] == (0, 4)
    assert sorted(calls[1:]) == [(1, 4), (2, 4), (3, 4), (4, 4)]


# ---- one journal per digest, whatever list ----


def test_the_same_list_by_another_name_reaches_nobody_twice(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = subscribers(ws, PEOPLE)
    (ws / "link.csv").symlink_to(csv)
    (ws / "copy.csv").write_bytes(csv.read_bytes())
    # A re-export: other column order, other case, an extra column.
    rows = "".join(f'"{n}",{e.upper()},x\n' for e, n in PEOPLE)
    (ws / "export.csv").write_text("name,email,city\n" + rows, encoding="utf-8")
    with Server(Handler()) as server:
        smtp_env(server.port)
        for name in ("subscribers.csv", "link.csv", "copy.csv", "export.csv"):
            result = run("send", *MONTH, "--subscribers", str(ws / name), "--yes")
            assert result.exit_code == 0, result.stderr
        assert "0 sent, 0 failed, 0 deferred, 0 suppressed in this run (4 done before" in result.stderr
        assert server.handler.counts() == {normalised(e).lower(): 1 for e, _ in PEOPLE}
    assert [p.name for p in (ws / "out" / "2021-03").glob("*.sqlite")] == ["journal.sqlite"]


def test_two_lists_with_the_same_file_name_share_only_the_people_on_both(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    (ws / "a").mkdir()
    (ws / "b").mkdir()
    first = subscribers(ws / "a", PEOPLE[:2])
    second = subscribers(ws / "b", PEOPLE[1:])  # Bob is on both
    with Server(Handler(refuse={"ann@example.org": "450 try later"})) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(first), "--yes", "--retries", "0").exit_code == 1
        result = run("send", *MONTH, "--subscribers", str(second), "--yes")
        # Ann (deferred, on the first list only) does not hold up the second list, which got it in full.
        assert result.exit_code == 0, result.stderr
        assert "2 sent, 0 failed, 0 deferred, 0 suppressed in this run (1 done before" in result.stderr
        assert server.handler.counts() == {"bob@example.org": 1, "zoe@example.net": 1, "x@example.com": 1}
    status = run("send", *MONTH, "--status")
    # Ann is still to send: "complete" would say otherwise.
    assert status.stdout.startswith(
        "out/2021-03/journal.sqlite: 3 sent, 0 failed, 1 deferred, 0 pending (a list "
    )
    assert re.search(r"\(a list was sent in full on \d{4}-\d\d-\d\d; 1 still to send\)\n$", status.stdout)


def test_a_list_sent_in_full_stays_so_when_another_list_is_sent_in_part(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:2])), "--yes").exit_code == 0
        server.handler.refuse["zoe@example.net"] = "451 later"
        other = subscribers(ws, PEOPLE[2:], name="other.csv")
        assert run("send", *MONTH, "--subscribers", str(other), "--yes", "--retries", "0").exit_code == 1
    nothing_new = run("build", "--since-last-send")
    assert nothing_new.exit_code == 3, nothing_new.stderr  # the first list did get March in full


# ---- a stale build ----


def _late_item(ws: Path) -> None:
    write_item(
        ws / "items",
        "late.md",
        """
        ---
        title: A late March item
        date: 2021-03-30
        category: News
        summary: Added after the build.
        ---
        """,
    )


@pytest.mark.parametrize(
    ("mode", "what"),
    [(("--yes",), "send"), (("--dry-run",), "dry-run"), (("--test", "me@example.org"), "send a test of")],
)
def test_a_build_the_items_moved_on_from_is_not_sent_unless_as_built(
    ws: Path, run: Run, smtp_env: Callable[..., None], mode: tuple[str, ...], what: str
) -> None:
    _late_item(ws)
    (ws / "items" / next(p.name for p in (ws / "items").glob("2021-03-31-*.md"))).unlink()
    csv = str(subscribers(ws, PEOPLE[:1]))
    with Server(Handler()) as server:
        smtp_env(server.port)
        refused = run("send", *MONTH, "--subscribers", csv, *mode)
        assert refused.exit_code == 1
        assert refused.stdout == ""
        assert server.handler.received == []
        assert refused.stderr.startswith(
            "Error: out/2021-03/ is out of date: the window's items changed since it was built:\n"
            "  added:   items/late.md\n  removed: items/2021-03-31-"
        )
        assert refused.stderr.endswith(
            f"Rebuild it (`digest build --month 2021-03`) and check it, or pass --as-built to {what} the folder "
            "as it is.\n"
        )
        anyway = run("send", *MONTH, "--subscribers", csv, *mode, "--as-built")
        assert anyway.exit_code == 0, anyway.stderr
        assert len(server.handler.received) == (0 if "--dry-run" in mode else 1)


# ---- what the server sees: pace, parallel connections, retries ----


def test_the_rate_limit_paces_a_real_send(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    many = [(f"r{n}@example.org", "") for n in range(11)]
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run(
            "send",
            *MONTH,
            "--subscribers",
            str(subscribers(ws, many)),
            "--yes",
            "--rate",
            "20/s",
            "--connections",
            "3",
        )
        assert result.exit_code == 0, result.stderr
        arrivals = server.handler.arrivals
    # 11 messages at 20/s across three connections: 10 gaps of 50 ms, 0.5 s from first to last.
    span = arrivals[-1] - arrivals[0]
    assert 0.4 <= span < 5, span


def test_connections_are_used_in_parallel(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    many = [(f"r{n}@example.org", "") for n in range(8)]
    with Server(Handler(delay=0.1)) as server:
        smtp_env(server.port)
        result = run(
            "send", *MONTH, "--subscribers", str(subscribers(ws, many)), "--yes", "--connections", "4"
        )
        assert result.exit_code == 0, result.stderr
        assert server.handler.open_max >= 4
        assert server.handler.connections == 5  # the first, which checks the login, and one per connection


def test_a_421_closes_the_connection_and_the_retry_opens_another(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    for fault, connections in (("421 4.3.2 closing", 3), ("451 4.3.0 busy", 2)):
        handler = Handler(data_faults=[fault])
        with Server(handler) as server:
            smtp_env(server.port)
            csv = subscribers(ws, PEOPLE[:1], name=f"{fault[:3]}.csv")
            (ws / "out" / "2021-03" / "journal.sqlite").unlink(missing_ok=True)
            result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
            assert result.exit_code == 0, result.stderr
        assert handler.counts() == {"ann@example.org": 1}
        assert handler.connections == connections, fault  # the check's, the first, (421:) a fresh one


@pytest.mark.parametrize(("faults", "arrives"), [(2, True), (3, False)])
def test_a_message_is_tried_once_and_then_retries_times(
    ws: Path, run: Run, smtp_env: Callable[..., None], faults: int, arrives: bool
) -> None:
    handler = Handler(data_faults=["451 busy"] * faults)
    with Server(handler) as server:
        smtp_env(server.port)
        csv = str(subscribers(ws, PEOPLE[:1]))
        result = run("send", *MONTH, "--subscribers", csv, "--yes", "--retries", "2", "--retry-delay", "0")
    assert handler.data_ends == 3  # the first attempt and two retries, never a fourth
    assert result.exit_code == (0 if arrives else 1)
    assert journal_rows(ws)["ann@example.org"][0] == ("sent" if arrives else "deferred")


def test_headers_of_any_length_stay_within_998_characters(
    workspace: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TITLE", "T" * 3000)  # into the subject and the List-Id
    assert run("build", *MONTH).exit_code == 0
    name = "N" * 10_000
    with Server(Handler()) as server:
        smtp_env(server.port)
        csv = subscribers(workspace, [("ann@example.org", name), ("bob@example.org", "Zoë " * 2500)])
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        raws = {r[0]: raw for r, raw in server.handler.received}
        got = server.handler.messages()
    for raw in raws.values():
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    to = got["ann@example.org"]["To"].addresses[0]
    assert to.addr_spec == "ann@example.org"
    assert to.display_name.replace(" ", "") == name
    assert str(got["ann@example.org"]["Subject"]).startswith("T" * 3000)


def test_no_message_goes_out_once_the_journal_cannot_be_written(
    ws: Path, smtp_env: Callable[..., None]
) -> None:
    import resource
    from datetime import datetime

    from digest import send as sending
    from digest.config import load_config
    from digest.errors import SendError

    wal = ws / "out" / "2021-03" / "journal.sqlite-wal"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def disk_full(plan: sending.Plan) -> bool:
        # From now on no file of this process may grow (Python ignores SIGXFSZ: the write fails instead).
        resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size, hard))
        return True

    with Server(Handler()) as server:
        smtp_env(server.port)
        config = load_config(cwd=ws)
        try:
            with pytest.raises(SendError) as stopped:
                sending.run(
                    config,
                    ws / "out" / "2021-03",
                    subscribers(ws, PEOPLE),
                    now=datetime.fromisoformat(NOW),
                    confirm=disk_full,
                )
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert server.handler.received == []  # the write before the first delivery failed: nothing went
        assert server.handler.rcpts == {}
    assert (
        f"sending stopped: {ws / 'out' / '2021-03' / 'journal.sqlite'}: cannot write the send journal ("
        in str(stopped.value)
    )
    assert {s for s, *_ in journal_rows(ws).values()} == {"pending"}


def test_any_5xx_to_a_recipient_is_final_not_only_550(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    handler = Handler(refuse={"bob@example.org": "501 5.1.3 bad recipient address syntax"})
    with Server(handler) as server:
        smtp_env(server.port)
        result = run(
            "send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes", "--retry-delay", "0"
        )
    assert result.exit_code == 1
    assert handler.rcpts["bob@example.org"] == 1
    assert journal_rows(ws)["bob@example.org"][:2] == ("failed", 501)


def test_a_refused_sender_stops_the_whole_send(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    handler = Handler(mail_faults=["550 5.7.1 sender not allowed"])
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
    assert result.exit_code == 1
    assert "Error: sending stopped: 127.0.0.1:" in result.stderr
    assert "refused the sender news@example.org: 550 5.7.1 sender not allowed" in result.stderr
    assert handler.received == []
    assert {s for s, *_ in journal_rows(ws).values()} == {"pending"}  # nobody's fault but the sender's


def test_a_relay_that_keeps_dropping_the_connection_stops_the_send_and_blames_nobody(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    handler = Handler(data_faults=["drop"] * 3)
    with Server(handler) as server:
        smtp_env(server.port)
        csv = str(subscribers(ws, PEOPLE))
        result = run("send", *MONTH, "--subscribers", csv, "--yes", "--retries", "2", "--retry-delay", "0")
    assert result.exit_code == 1
    assert "Error: sending stopped: giving up after 3 attempts: 127.0.0.1:" in result.stderr
    assert {s for s, *_ in journal_rows(ws).values()} == {"pending"}  # left for the next run, not deferred


def test_retries_back_off(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    handler = Handler(data_faults=["451 busy"] * 2)
    with Server(handler) as server:
        smtp_env(server.port)
        csv = str(subscribers(ws, PEOPLE[:1]))
        began = time.monotonic()
        result = run("send", *MONTH, "--subscribers", csv, "--yes", "--retry-delay", "0.25")
        took = time.monotonic() - began
    assert result.exit_code == 0, result.stderr
    assert took >= 0.55  # 0.25 s, then 0.5 s (each less at most 20% of jitter)


def test_a_dry_run_counts_refused_recipients_as_done(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler(refuse={"bob@example.org": "550 no such user"})) as server:
        smtp_env(server.port)
        csv = str(subscribers(ws, PEOPLE))
        assert run("send", *MONTH, "--subscribers", csv, "--yes").exit_code == 1
    dry = run("send", *MONTH, "--subscribers", csv, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "journal: 3 sent, 1 failed, 0 deferred, 0 pending\n" in dry.stderr
    assert "dry run: would send 0 messages via 127.0.0.1:" in dry.stderr


# ---- the suppression list ----


def test_a_send_reaches_nobody_suppressed_and_says_why(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = subscribers(ws, PEOPLE)
    assert run("suppress", "add", "ANN@example.org", "bob@example.org", "--note", "asked").exit_code == 0
    with Server(Handler()) as server:
        smtp_env(server.port)
        dry = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
        assert dry.exit_code == 0, dry.stderr
        assert "dry run: would send 2 messages via 127.0.0.1:" in dry.stderr
        assert "(2 suppressed); sent nothing" in dry.stderr
        assert b"To: =?utf-8?" in dry.stdout_bytes or b"zoe@example.net" in dry.stdout_bytes  # not Ann's
        assert b"ann@example.org" not in dry.stdout_bytes.lower()
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        assert "2 sent, 0 failed, 0 deferred, 2 suppressed in this run (0 done before" in result.stderr
        assert set(server.handler.rcpts) == {"zoe@example.net", "x@example.com"}
        journal = journal_rows(ws)
        assert journal["ann@example.org"][0] == journal["bob@example.org"][0] == "suppressed"
        assert journal["ann@example.org"][2].startswith("manual (command, ")
        assert journal["ann@example.org"][2].endswith("): asked")
        status = run("send", *MONTH, "--status")
        assert status.stdout.splitlines() == [
            "out/2021-03/journal.sqlite: 2 sent, 0 failed, 0 deferred, 0 pending, 2 suppressed (complete)",
            f"  Bob@example.org: suppressed: {journal['bob@example.org'][2]}",
            f"  ann@example.org: suppressed: {journal['ann@example.org'][2]}",
        ]
        # Bob re-subscribes: the next run of this digest reaches him, and only him.
        assert run("suppress", "remove", "bob@example.org").exit_code == 0
        declined = run("send", *MONTH, "--subscribers", str(csv), input="n\n")
        assert declined.exit_code == 1  # nothing sent, but the journal already knows he is back
        assert "journal: 2 sent, 0 failed, 0 deferred, 1 pending, 1 suppressed\n" in declined.stderr
        assert "Send 'Co-operative News Digest: March 2021' to 1 recipient via" in declined.stderr
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
        assert "1 sent, 0 failed, 0 deferred, 1 suppressed in this run (2 done before" in again.stderr
        assert server.handler.rcpts == {"zoe@example.net": 1, "x@example.com": 1, "bob@example.org": 1}
    assert journal_rows(ws)["bob@example.org"][0] == "sent"


def test_a_suppression_after_the_send_leaves_its_result(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = subscribers(ws, PEOPLE[:2])
    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(csv), "--yes").exit_code == 0
        assert run("suppress", "add", "ann@example.org").exit_code == 0
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
        assert "0 sent, 0 failed, 0 deferred, 0 suppressed in this run (2 done before" in again.stderr
        dry = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
        assert "would send 0 messages via" in dry.stderr and "(0 suppressed)" in dry.stderr
    assert journal_rows(ws)["ann@example.org"][0] == "sent"


def test_a_hard_bounce_during_a_send_suppresses_the_address(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = subscribers(ws, PEOPLE)
    unknown = "550 5.1.1 <zoe@example.net>: Recipient address rejected: User unknown"
    policy = "554 5.7.1 <x@example.com>: Relay access denied"
    handler = Handler(refuse={"zoe@example.net": unknown, "x@example.com": policy})
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 1
        assert (
            "1 address refused for good, now on the suppression list (bounced): zoe@example.net"
            in result.stderr
        )
        listed = run("suppress", "list", "--json")
        (entry,) = json.loads(listed.stdout)  # the policy refusal (5.7.1) is not the address's fault
        assert (entry["address"], entry["reason"], entry["source"]) == (
            "zoe@example.net",
            "bounced",
            "send:2021-03",
        )
        assert entry["evidence"] == f"RCPT TO: {unknown}"
        # The next digest (here: the same one with its journal gone) does not try her again.
        for path in (ws / "out" / "2021-03").glob("journal.sqlite*"):
            path.unlink()
        handler.refuse.clear()
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
        assert "3 sent, 0 failed, 0 deferred, 1 suppressed in this run" in again.stderr
        assert server.handler.rcpts["zoe@example.net"] == 1
        assert server.handler.rcpts["x@example.com"] == 2
    assert journal_rows(ws)["zoe@example.net"][2].startswith("bounced (send:2021-03, ")
