"""The SMTP connection: settings, TLS, connect and log in, one transaction at a time (`deliver`, `send_one`,
`probe`), and the rate limit. `connect` raises `Fatal` for what no retry can mend (TLS, certificate, login)
and OSError for what a fresh connection may (refused, dropped, 4xx on connect); `deliver` raises `Reply` for
any refusal, with its code and the command it answered.
"""

from __future__ import annotations

import contextlib
import ipaddress
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from digest.config import Config
from digest.errors import ConfigError, SendError

__all__ = [
    "DEFAULT_PORTS",
    "Fatal",
    "Message",
    "RateLimit",
    "Reply",
    "SmtpSettings",
    "close",
    "connect",
    "deliver",
    "is_loopback",
    "probe",
    "reply_text",
    "rset",
    "send_one",
    "smtp_settings",
    "tls_context",
    "tls_failure",
]

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    """Where and how to connect. The password comes from DIGEST_SMTP_PASSWORD and is never shown."""

    host: str
    port: int
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    verify: bool = True
    timeout: float = 30.0
    ca_file: Path | None = None

    @property
    def address(self) -> str:
        """host:port, for messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True when every address the host name resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def smtp_settings(config: Config) -> SmtpSettings:
    """The SMTP settings of the config, with the password from the environment; checked, not yet used."""
    security = config.smtp.security
    if security == "none" and not is_loopback(config.smtp.host):
        raise ConfigError(
            f'smtp.security = "none" sends in clear text and is allowed only to a loopback address '
            f"(127.0.0.1, ::1, localhost), not to {config.smtp.host!r}: use starttls or ssl"
        )
    password = config.secrets.smtp_password
    if config.smtp.username and not password:
        raise ConfigError(
            f"smtp.username is {config.smtp.username!r} but DIGEST_SMTP_PASSWORD is not set "
            "(the password is read from the environment only)"
        )
    cafile = config.smtp.ca_file
    if cafile is not None:
        if not cafile.is_file():
            raise ConfigError(f"smtp.ca_file (DIGEST_SMTP_CA_FILE): {cafile}: no such file")
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(cafile))
        except ssl.SSLError as err:
            raise ConfigError(
                f"smtp.ca_file (DIGEST_SMTP_CA_FILE): {cafile}: not PEM CA certificates ({err.reason or err})"
            ) from err
    return SmtpSettings(
        host=config.smtp.host,
        port=config.smtp.port or DEFAULT_PORTS[security],
        security=security,
        username=config.smtp.username,
        password=password,
        verify=config.smtp.verify,
        timeout=config.smtp.timeout,
        ca_file=cafile,
    )


class Reply(Exception):
    """A reply that is not success, with the command it answered."""

    def __init__(self, code: int, text: str, stage: str) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text, self.stage = code, text, stage


class Fatal(Exception):
    """Nothing a retry can mend: a TLS, certificate or login failure, or a server that cannot do it."""


def reply_text(raw: bytes | str) -> str:
    """A server's reply on one line."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())


_EHLO_NAME: list[str] = []


def _ehlo_name() -> str:
    if not _EHLO_NAME:
        _EHLO_NAME.append(socket.getfqdn())  # once per process: it can mean a DNS lookup
    return _EHLO_NAME[0]


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verification on unless turned off explicitly; an extra CA file for a private relay."""
    context = ssl.create_default_context()  # the system's CA certificates...
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))  # ...and the extra ones, not instead
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """An open, secured and logged-in connection; Fatal for TLS and login failures, OSError to retry."""
    where = settings.address
    conn: smtplib.SMTP
    try:
        if settings.security == "ssl":
            conn = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                local_hostname=_ehlo_name(),
                timeout=settings.timeout,
                context=tls_context(settings),
            )
        else:
            conn = smtplib.SMTP(
                settings.host, settings.port, local_hostname=_ehlo_name(), timeout=settings.timeout
            )
    except ssl.SSLError as err:
        raise tls_failure(where, err) from err
    except smtplib.SMTPConnectError as err:
        raise OSError(
            f"{where} refused the connection: {err.smtp_code} {reply_text(err.smtp_error)}"
        ) from err
    if conn.sock is not None:
        # Each write is a whole unit (a message and the next envelope): Nagle would hold its last segment
        # back until the earlier ones are acknowledged, a round trip more per message on a real link.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        _secure_and_login(conn, settings)
    except BaseException:
        conn.close()
        raise
    return conn


def tls_failure(where: str, err: ssl.SSLError) -> Fatal:
    """What a failed TLS handshake or certificate check stops the send with (never retried)."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return Fatal(f"{where}: the server's certificate is not trusted: {err.verify_message}")
    return Fatal(f"{where}: TLS handshake failed: {err.reason or err}")


def _secure_and_login(conn: smtplib.SMTP, settings: SmtpSettings) -> None:
    where = settings.address
    try:
        conn.ehlo()
        if settings.security == "starttls":
            if not conn.has_extn("starttls"):
                raise Fatal(
                    f"{where} does not offer STARTTLS (set smtp.security to ssl, or to none on loopback)"
                )
            conn.starttls(context=tls_context(settings))
            conn.ehlo()
        if settings.username:
            conn.login(settings.username, settings.password)
    except ssl.SSLError as err:
        raise tls_failure(where, err) from err
    except smtplib.SMTPAuthenticationError as err:
        raise Fatal(
            f"{where} refused the login of {settings.username!r}: "
            f"{err.smtp_code} {reply_text(err.smtp_error)}"
        ) from err
    except smtplib.SMTPNotSupportedError as err:
        raise Fatal(
            f"{where}: {err} (the server offers no AUTH: check smtp.security and smtp.username)"
        ) from err
    except smtplib.SMTPResponseException as err:
        if 400 <= err.smtp_code < 500:
            raise OSError(f"{where}: {err.smtp_code} {reply_text(err.smtp_error)}") from err
        raise Fatal(f"{where}: {err.smtp_code} {reply_text(err.smtp_error)}") from err
    except smtplib.SMTPException as err:
        raise OSError(f"{where}: {err}") from err


class Message(Protocol):
    """What `deliver` sends: the envelope recipient, the dot-stuffed, terminated DATA bytes (`wire`), and the
    message itself (`data`: what BDAT sends, as is)."""

    @property
    def recipient(self) -> str: ...
    @property
    def wire(self) -> bytes: ...
    @property
    def data(self) -> bytes: ...


def deliver(conn: smtplib.SMTP, sender: str, message: Message) -> str:
    """One transaction on an open connection, one command at a time; the server's reply, or Reply."""
    code, text = conn.mail(sender)
    if code != 250:
        rset(conn)
        raise Reply(code, reply_text(text), "MAIL FROM")
    code, text = conn.rcpt(message.recipient)
    if code not in (250, 251):
        rset(conn)
        raise Reply(code, reply_text(text), "RCPT TO")
    conn.putcmd("data")
    code, text = conn.getreply()
    if code != 354:
        # The server keeps the transaction open after refusing DATA: without RSET the next MAIL FROM
        # would get "503 nested MAIL command".
        rset(conn)
        raise Reply(code, reply_text(text), "DATA")
    conn.send(message.wire)  # already dot-stuffed and terminated
    code, text = conn.getreply()
    if code != 250:
        raise Reply(code, reply_text(text), "end of DATA")
    return f"{code} {reply_text(text)}"


def rset(conn: smtplib.SMTP) -> None:
    """End a refused transaction. A connection that died meanwhile is left for the next use to notice
    (it then raises SMTPServerDisconnected, which is retried on a fresh connection); the refusal stands."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        conn.rset()


def close(conn: smtplib.SMTP | None) -> None:
    """QUIT politely; just close when the connection is already gone."""
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def probe(settings: SmtpSettings) -> None:
    """Connect and log in once, then QUIT; SendError saying nothing was sent when that fails."""
    try:
        close(connect(settings))
    except Fatal as err:
        raise SendError(f"{err}; nothing was sent") from None
    except OSError as err:
        raise SendError(f"cannot connect to {settings.address}: {err}; nothing was sent") from None


def send_one(settings: SmtpSettings, sender: str, message: Message) -> str:
    """One message on a connection of its own (a test copy); the server's reply, or SendError."""
    try:
        conn = connect(settings)
    except Fatal as err:
        raise SendError(str(err)) from None
    except OSError as err:
        raise SendError(f"cannot connect to {settings.address}: {err}") from None
    try:
        return deliver(conn, sender, message)
    except Reply as err:
        raise SendError(f"{settings.address} refused the test message at {err.stage}: {err}") from None
    except (smtplib.SMTPException, OSError) as err:
        raise SendError(f"{settings.address}: {err}") from None
    finally:
        close(conn)


class RateLimit:
    """Spaces messages evenly across all connections: at most `per_second` (0: no limit)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        """Block until the next message may go (or `stop` is set)."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            at = max(self._next, now)
            self._next = at + self.interval
        if at > now:
            stop.wait(at - now)
