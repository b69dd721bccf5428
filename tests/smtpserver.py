"""A real SMTP server for the send tests: aiosmtpd in-process on 127.0.0.1, with faults on demand.

Every accepted message is kept as (envelope recipients, raw bytes). Faults are injected by the server,
never by patching smtplib: temporary replies (421/451) at the end of the next messages' data, a 550 for
chosen recipients, replies to the DATA command itself (before any 354), a dropped connection, a login
check, STARTTLS with a certificate made by the test. With `chunking` the server also offers CHUNKING and
takes BDAT (RFC 3030; aiosmtpd has none): each chunk read exactly, as is, one reply per chunk, a refused
transaction's chunk read and discarded, the same faults as DATA. With `hold` it keeps its replies back for
that many seconds while it goes on reading, and counts the messages whose data came in meanwhile: how many
the client had unanswered (`unanswered_max`).
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Handler:
    """What the server does: record messages, and answer with the faults queued in it."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> "550 ..." reply to RCPT
    data_faults: list[str] = field(default_factory=list)  # next DATA replies: "451 ...", "421 ...", "drop"
    # Replies to the DATA command itself, instead of 354 (the transaction stays open, as a real server's
    # does): the next DATA commands, then every DATA command of a transaction for these recipients.
    data_command_faults: list[str] = field(default_factory=list)
    data_command_refuse: dict[str, str] = field(default_factory=dict)  # recipient -> "554 ..."
    mail_faults: list[str] = field(default_factory=list)  # next MAIL FROM replies, e.g. "503 ..."
    rcpt_faults: dict[str, list[str]] = field(default_factory=dict)  # recipient -> its next RCPT replies
    data_end_refuse: dict[str, str] = field(default_factory=dict)  # recipient -> reply to the end of its data
    # Recipients whose message is accepted (250 sent) and then the connection closed, before any reply to
    # what the client pipelined after it:
    drop_after: set[str] = field(default_factory=set)
    rcpt_delay: dict[str, float] = field(default_factory=dict)  # recipient -> seconds before its RCPT reply
    # Say 354 to a DATA with no accepted recipient (as some servers do), then refuse the empty message:
    data_without_rcpt: bool = False
    pipelining: bool = False
    chunking: bool = False  # offer CHUNKING: BDAT
    hold: float = 0.0  # seconds each reply is held back, while reading goes on
    delay: float = 0.0  # seconds before each DATA reply: keeps messages in flight (kill test)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # What the server saw, to check the client's behaviour from outside:
    rcpts: Counter[str] = field(default_factory=Counter)  # every RCPT TO, refused or not, by address
    data_ends: int = 0  # messages whose data ended (whatever the reply)
    bdats: int = 0  # BDAT commands
    unanswered_max: int = 0  # the most message ends received while their replies were held back
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each accepted message
    connections: int = 0  # connections opened so far
    open_now: int = 0
    open_max: int = 0  # the most connections open at once

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if self.chunking:
            responses.insert(-1, "250-CHUNKING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            fault = self.mail_faults.pop(0) if self.mail_faults else None
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.rcpts[address.lower()] += 1
            queued = self.rcpt_faults.get(address.lower())
            fault = queued.pop(0) if queued else None
        await asyncio.sleep(self.rcpt_delay.get(address.lower(), 0.0))
        if fault:
            return fault
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(server, _SMTP):
            if server.silent:
                return "451 never seen"  # after a drop_after: not received, not answered
            server.ends_held += 1
        with self.lock:
            self.data_ends += 1
            fault = self.data_faults.pop(0) if self.data_faults else None
        if fault == "drop":
            assert server.transport is not None
            server.transport.abort()  # the connection dies before the reply: the client must not count it
            return "451 never seen"
        if fault:
            return fault
        rcpts = [r.lower() for r in envelope.rcpt_tos]
        refusal = next((self.data_end_refuse[r] for r in rcpts if r in self.data_end_refuse), None)
        if refusal:
            return refusal
        assert isinstance(envelope.content, bytes)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), envelope.content))
            self.arrivals.append(time.monotonic())
        if self.drop_after.intersection(rcpts):
            await server.push("250 2.0.0 Ok: queued as TEST")
            assert server.transport is not None and isinstance(server, _SMTP)
            # The connection ends after the 250 is written; nothing the client pipelined is answered. A
            # FIN, not a close with the client's pipelined bytes unread (that would be a reset, which can
            # discard the 250 before the client reads it).
            server.silent = True
            server.transport.write_eof()
        return "250 2.0.0 Ok: queued as TEST"

    def opened(self) -> None:
        """A client connected."""
        with self.lock:
            self.connections += 1
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)

    def closed(self) -> None:
        """A client's connection ended."""
        with self.lock:
            self.open_now -= 1

    def data_command_fault(self, envelope: Envelope) -> str | None:
        """The reply to give the DATA command of this transaction instead of 354, if any."""
        with self.lock:
            if self.data_command_faults:
                return self.data_command_faults.pop(0)
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in self.data_command_refuse:
                return self.data_command_refuse[rcpt.lower()]
        return None

    def messages(self) -> dict[str, EmailMessage]:
        """The received messages by envelope recipient (each recipient must appear once)."""
        out: dict[str, EmailMessage] = {}
        for rcpts, raw in list(self.received):
            assert len(rcpts) == 1
            assert rcpts[0] not in out, f"{rcpts[0]} got two messages"
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out[rcpts[0]] = msg
        return out

    def counts(self) -> Counter[str]:
        """How many messages each recipient got."""
        with self.lock:
            return Counter(r[0].lower() for r, _ in self.received)


class _SMTP(SMTP):
    """aiosmtpd's server, with a hook before the 354 of DATA (aiosmtpd has no handler hook there), BDAT,
    replies held back on demand, and connections counted."""

    holding = False
    silent = False  # the connection was ended (drop_after): nothing more is written
    ends_held = 0  # messages whose data ended since the held replies were last written
    _held: list[bytes] | None = None
    _chunks: list[bytes] | None = None

    async def push(self, status: Any) -> None:
        if self.silent:
            return
        handler = self.event_handler
        if isinstance(handler, Handler) and handler.hold and self.envelope and self.envelope.mail_from:
            self.holding = True  # from the first MAIL on: the greeting and EHLO are answered at once
        if not self.holding:
            await super().push(status)
            return
        raw = status.encode() if isinstance(status, str) else status
        if self._held is None:
            self._held = []
            asyncio.get_running_loop().call_later(handler.hold, self._release)
        self._held.append(raw + b"\r\n")

    def _release(self) -> None:
        handler = self.event_handler
        with handler.lock:
            handler.unanswered_max = max(handler.unanswered_max, self.ends_held)
        self.ends_held = 0
        held, self._held = self._held or [], None
        if self.transport is not None and not self.transport.is_closing():
            self._writer.write(b"".join(held))

    @syntax("BDAT size [LAST]")
    async def smtp_BDAT(self, arg: str) -> None:
        handler = self.event_handler
        assert isinstance(handler, Handler) and self.envelope is not None
        words = (arg or "").split()
        if not (1 <= len(words) <= 2 and words[0].isdigit() and words[1:] in ([], ["LAST"])):
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        chunk = await self._reader.readexactly(int(words[0]))  # binary: no lines, no dots
        last = len(words) == 2
        with handler.lock:
            handler.bdats += 1
        if not handler.chunking:
            await self.push('500 Error: command "BDAT" not recognized')
            return
        if not self.envelope.mail_from or not self.envelope.rcpt_tos:
            # The chunk is read and dropped; the sender stays set, as Postfix keeps it: a client that does
            # not RSET then gets "503 nested MAIL command" on its next MAIL.
            self._chunks = None
            await self.push(
                "503 5.5.1 Error: need MAIL and RCPT"
                if not self.envelope.mail_from
                else "554 5.5.1 no valid recipients"
            )
            return
        self._chunks = [*(self._chunks or []), chunk]
        if not last:
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        content, self._chunks = b"".join(self._chunks), None
        status = handler.data_command_fault(self.envelope)
        if status is None:
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    def connection_made(self, transport: Any) -> None:
        if isinstance(self.event_handler, Handler):
            self.event_handler.opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if isinstance(self.event_handler, Handler):
            self.event_handler.closed()
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        if isinstance(handler, Handler) and handler.data_without_rcpt and not self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b".\r\n")  # the client ends the empty message at once
            await self.push("554 5.5.1 no valid recipients")
            self._set_rset_state()
            return
        if isinstance(handler, Handler) and self.envelope is not None and self.envelope.rcpt_tos:
            fault = handler.data_command_fault(self.envelope)
            if fault:
                await self.push(fault)  # no RSET of our own: the client must send one
                return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)


class Server:
    """An aiosmtpd Controller on 127.0.0.1:<free port>; stop() in a finally."""

    def __init__(self, handler: Handler, **smtp_options: Any) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller = _Controller(handler, hostname="127.0.0.1", port=self.port, **smtp_options)

    def __enter__(self) -> Server:
        self.controller.start()
        with self.handler.lock:  # the controller's own connection, made to see that the server is up
            self.handler.connections = self.handler.open_max = 0
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


def login_checker(user: str, password: str) -> Any:
    """An aiosmtpd authenticator that accepts one user and password."""

    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == user.encode()
            and data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return check


def server_tls_context(cert: Any) -> ssl.SSLContext:
    """A server-side context holding a trustme certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


# ---- what the send tests share: the workspace pointed at a server, lists, the journal's rows ----

SECRET = "test-unsubscribe-secret-of-32-bytes-or-more"
URL = "https://example.org/unsubscribe?u={token}"
MONTH = ("--month", "2021-03")
PEOPLE = [
    ("ann@example.org", "Ann Lee"),
    ("Bob@Example.org", ""),  # no name: the fallback greeting
    ("zoe@example.net", "Zoë Ñúñez-O'Brien"),
    ("x@example.com", "<b>Xavier & Co</b>"),  # must arrive escaped in the HTML
]


def point_at(monkeypatch: Any, port: int, security: str = "none", **more: str) -> None:
    """Point the workspace's send settings at a port, through DIGEST_* variables (as CI would)."""
    monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(port))
    monkeypatch.setenv("DIGEST_SMTP_SECURITY", security)
    monkeypatch.setenv("DIGEST_SMTP_TIMEOUT", "10")
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", URL)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_MAILTO", "unsubscribe@example.org")
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_SECRET", SECRET)
    for name, value in more.items():
        monkeypatch.setenv(name, value)


def subscribers(folder: Any, rows: list[tuple[str, str]], name: str = "subscribers.csv") -> Any:
    """A CSV list with email and name columns."""
    path = folder / name
    lines = ["email,name"] + [f'{e},"{n}"' for e, n in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def normalised(address: str) -> str:
    """As the validator writes an address: the domain lower-cased, the local part as it was."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def journal_rows(workspace: Any, slug: str = "2021-03") -> dict[str, tuple[str, int | None, str, str]]:
    """key -> (status, code, reply, message_id) straight from the digest's journal file."""
    import sqlite3

    db = sqlite3.connect(workspace / "out" / slug / "journal.sqlite")
    try:
        rows = db.execute("select key, status, code, reply, message_id from recipients").fetchall()
    finally:
        db.close()
    return {k: (s, c, r or "", m or "") for k, s, c, r, m in rows}


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """point_at(port, security, **variables) for this test."""
    return functools.partial(point_at, monkeypatch)


@pytest.fixture
def ws(workspace: Path, run: Callable[..., Any]) -> Path:
    """The sample workspace with March 2021 built (as a send normally finds it)."""
    assert run("build", *MONTH).exit_code == 0
    return workspace


# ---- one smtp.Session driven by hand (tests of the pipelined and BDAT sessions) ----

SENDER = "news@example.org"
OK = "250 2.0.0 Ok: queued as TEST"  # what Handler answers to an accepted message


@dataclass(frozen=True)
class Msg:
    """A message as smtp.Session takes it: its recipient, its bytes, and those bytes dot-stuffed for DATA."""

    recipient: str
    data: bytes = b"Subject: hi\r\n\r\nhello\r\n"

    @property
    def wire(self) -> bytes:
        return re.sub(rb"(?m)^\.", b"..", self.data) + b".\r\n"


def session_settings(port: int, timeout: float = 5) -> Any:
    """Plain SMTP to a test server on 127.0.0.1."""
    from digest import smtp

    return smtp.SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=timeout)


def open_session(port: int, *, window: int = 1, timeout: float = 5) -> Any:
    """An smtp.Session on a fresh connection to a test server."""
    from digest import smtp

    return smtp.Session(smtp.connect(session_settings(port, timeout)), SENDER, window=window)


def shown(outcome: Any) -> str:
    """A message's outcome, short: the reply, "STAGE: code" for a refusal, "lost: Error" for a lost one."""
    from digest import smtp

    if isinstance(outcome, str):
        return outcome
    if isinstance(outcome, smtp.Reply):
        return f"{outcome.stage}: {outcome.code}"
    return f"lost: {type(outcome).__name__}"


def deliver_all(
    port: int, messages: list[Msg], *, window: int = 1, timeout: float = 5
) -> list[tuple[str, str]]:
    """Every message submitted on one Session, then drained: (recipient, reply or error), in result order."""
    from digest import smtp

    done: list[Any] = []
    session = open_session(port, window=window, timeout=timeout)
    try:
        submitted = []
        for message in messages:
            if session.broken:
                break
            submitted.append(message)
            done += session.submit(message)
        done += session.drain()
        # Every message handed over has exactly one result, and a lost one means a broken session.
        assert sorted(id(m) for m, _ in done) == sorted(id(m) for m in submitted)
        assert session.broken == any(not isinstance(o, (str, smtp.Reply)) for _, o in done)
    finally:
        session.close()
    return [(m.recipient, shown(o)) for m, o in done]
