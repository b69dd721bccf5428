"""A real SMTP server for the send tests: aiosmtpd in-process on 127.0.0.1, with faults on demand.

Every accepted message is kept as (envelope recipients, raw bytes). Faults are injected by the server,
never by patching smtplib: temporary replies (421/451) at the end of the next messages' data, a 550 for
chosen recipients, replies to the DATA command itself (before any 354), a dropped connection, a login
check, STARTTLS with a certificate made by the test.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

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
    pipelining: bool = False
    delay: float = 0.0  # seconds before each DATA reply: keeps messages in flight (kill test)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
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
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            fault = self.data_faults.pop(0) if self.data_faults else None
        if fault == "drop":
            assert server.transport is not None
            server.transport.abort()  # the connection dies before the reply: the client must not count it
            return "451 never seen"
        if fault:
            return fault
        assert isinstance(envelope.content, bytes)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as TEST"

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
    """aiosmtpd's server, with a hook before the 354 of DATA (aiosmtpd has no handler hook there)."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
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
