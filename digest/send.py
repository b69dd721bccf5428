"""Built digest + subscriber list -> the SMTP relay: personalised messages, journal, retries, rate limit.

We feed a relay well; we are not a mail server. Each of `--connections` threads keeps one SMTP connection
(one login) and reuses it for message after message, pipelining MAIL/RCPT/DATA when the server offers
PIPELINING. A 4xx reply or a dropped connection is retried with exponential backoff on a fresh connection;
a 5xx for a recipient is recorded and sending goes on; a failed login, TLS handshake or certificate check
stops everything at once. Every result is in the journal (digest/journal.py) the moment it is known.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from digest import outdir
from digest.config import Config
from digest.errors import ConfigError, SendError
from digest.journal import Counts, Journal, journal_path
from digest.message import Outgoing, Personaliser
from digest.subscribers import Subscriber, SubscriberList, check_subscribers, iter_subscribers, require_clean

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


# ---- the built digest ----


@dataclass(frozen=True)
class Parts:
    """The built digest a send reads: its folder, the un-personalised parts, where the next digest starts."""

    folder: Path
    subject: str
    html: str
    text: str
    content_hash: str
    placeholders: Mapping[str, str]
    newest_end: datetime | None = None  # just after the newest item: where the next digest starts


def load_parts(folder: Path, *, tz: tzinfo = UTC) -> Parts | None:
    """The parts `digest build` left in out/<slug>/, or None when that digest has not been built."""
    if not outdir.is_built(folder):
        return None
    built = outdir.load(folder)
    p = built.parts()
    return Parts(
        folder, p.subject, p.html, p.text, p.content_hash, p.placeholders, built.manifest.newest_end(tz)
    )


def check_greeting(maker: Personaliser, listed: SubscriberList) -> None:
    """Refuse a greeting that names a column the list does not have: a typo must not become "Hello,"."""
    # {name} is always known: a list without that column simply has no names (the fallback greeting).
    unknown = sorted(maker.greeting_uses - {"name", *listed.columns})
    if unknown:
        raise ConfigError(
            f"[send] greeting uses {{{unknown[0]}}}, which is not a column of {listed.path} "
            f"(columns: {', '.join(listed.columns)})"
        )


# ---- SMTP ----


class _Reply(Exception):
    """A reply that is not success, with the command it answered."""

    def __init__(self, code: int, text: str, stage: str) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text, self.stage = code, text, stage


class _Fatal(Exception):
    """Stop the whole send (login, TLS, configuration)."""


def _reply_text(raw: bytes | str) -> str:
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
    """An open, secured and logged-in connection; _Fatal for TLS and login failures, OSError to retry."""
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
    except ssl.SSLCertVerificationError as err:
        raise _Fatal(f"{where}: the server's certificate is not trusted: {err.verify_message}") from err
    except ssl.SSLError as err:
        raise _Fatal(f"{where}: TLS handshake failed: {err.reason or err}") from err
    except smtplib.SMTPConnectError as err:
        raise OSError(
            f"{where} refused the connection: {err.smtp_code} {_reply_text(err.smtp_error)}"
        ) from err
    try:
        conn.ehlo()
        if settings.security == "starttls":
            if not conn.has_extn("starttls"):
                raise _Fatal(
                    f"{where} does not offer STARTTLS (set smtp.security to ssl, or to none on loopback)"
                )
            conn.starttls(context=tls_context(settings))
            conn.ehlo()
        if settings.username:
            conn.login(settings.username, settings.password)
    except ssl.SSLCertVerificationError as err:
        conn.close()
        raise _Fatal(f"{where}: the server's certificate is not trusted: {err.verify_message}") from err
    except ssl.SSLError as err:
        conn.close()
        raise _Fatal(f"{where}: TLS handshake failed: {err.reason or err}") from err
    except smtplib.SMTPAuthenticationError as err:
        conn.close()
        raise _Fatal(
            f"{where} refused the login of {settings.username!r}: "
            f"{err.smtp_code} {_reply_text(err.smtp_error)}"
        ) from err
    except smtplib.SMTPNotSupportedError as err:
        conn.close()
        raise _Fatal(
            f"{where}: {err} (the server offers no AUTH: check smtp.security and smtp.username)"
        ) from err
    except smtplib.SMTPResponseException as err:
        conn.close()
        if 400 <= err.smtp_code < 500:
            raise OSError(f"{where}: {err.smtp_code} {_reply_text(err.smtp_error)}") from err
        raise _Fatal(f"{where}: {err.smtp_code} {_reply_text(err.smtp_error)}") from err
    except smtplib.SMTPException as err:
        conn.close()
        raise OSError(f"{where}: {err}") from err
    return conn


def deliver(conn: smtplib.SMTP, sender: str, message: Outgoing) -> str:
    """One transaction on an open connection; the server's reply, or _Reply for any refusal."""
    rcpt = message.recipient
    if conn.has_extn("pipelining"):
        # RFC 2920: MAIL, RCPT and DATA in one write, then the three replies.
        conn.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        replies = [conn.getreply(), conn.getreply(), conn.getreply()]
        (mcode, mtext), (rcode, rtext), (dcode, dtext) = replies
        if dcode == 354:
            if mcode == 250 and rcode in (250, 251):
                conn.send(message.wire)
                code, text = conn.getreply()
                if code != 250:
                    raise _Reply(code, _reply_text(text), "end of DATA")
                return f"{code} {_reply_text(text)}"
            conn.send(b".\r\n")  # a server that said 354 with no recipient: end the empty message
            conn.getreply()
        else:
            _rset(conn)
        if mcode != 250:
            raise _Reply(mcode, _reply_text(mtext), "MAIL FROM")
        if rcode not in (250, 251):
            raise _Reply(rcode, _reply_text(rtext), "RCPT TO")
        raise _Reply(dcode, _reply_text(dtext), "DATA")
    code, text = conn.mail(sender)
    if code != 250:
        _rset(conn)
        raise _Reply(code, _reply_text(text), "MAIL FROM")
    code, text = conn.rcpt(rcpt)
    if code not in (250, 251):
        _rset(conn)
        raise _Reply(code, _reply_text(text), "RCPT TO")
    conn.putcmd("data")
    code, text = conn.getreply()
    if code != 354:
        # The server keeps the transaction open after refusing DATA: without RSET the next MAIL FROM
        # would get "503 nested MAIL command".
        _rset(conn)
        raise _Reply(code, _reply_text(text), "DATA")
    conn.send(message.wire)  # already dot-stuffed and terminated
    code, text = conn.getreply()
    if code != 250:
        raise _Reply(code, _reply_text(text), "end of DATA")
    return f"{code} {_reply_text(text)}"


def _rset(conn: smtplib.SMTP) -> None:
    """End a refused transaction. A connection that died meanwhile is left for the next use to notice
    (it then raises SMTPServerDisconnected, which is retried on a fresh connection); the refusal stands."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        conn.rset()


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


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


# ---- a whole send ----

LOCK_WAIT = 120.0  # seconds a send waits for a build of the same digest to finish writing it


@contextlib.contextmanager
def using_folder(folder: Path, *, content_hash: str | None = None) -> Iterator[None]:
    """Hold the digest folder's lock as a send does (shared: sends to other lists may run too), so that no
    build replaces the folder meanwhile; first put back journals a build killed mid-swap left aside.
    With `content_hash`, refuse if the folder no longer holds that build (rebuilt since it was read)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(outdir.lock(folder, exclusive=False, wait=LOCK_WAIT))
        except outdir.FolderBusy as err:
            raise SendError(
                f"{err}: a `digest build` of this digest is still writing it after {LOCK_WAIT:.0f} s; "
                "nothing was sent"
            ) from None
        outdir.recover(folder)
        if content_hash is not None:
            current = load_parts(folder)
            if current is None or current.content_hash != content_hash:
                raise SendError(
                    f"{folder}: the digest was rebuilt just as this send began; nothing was sent: "
                    "run the command again (to send the new version)"
                )
        yield


def repair_folder(folder: Path) -> None:
    """Put back what a build killed mid-swap left aside (out/<slug>/ itself, or its journals), if anything."""
    with using_folder(folder):
        pass


@dataclass(frozen=True, kw_only=True)
class SendOptions:
    """How to send: parallel connections, rate, retries."""

    connections: int = 1
    rate: float = 0.0  # messages per second, 0 = no limit
    retries: int = 5  # attempts per message after the first, for 4xx replies and dropped connections
    retry_delay: float = 1.0  # seconds before the first retry; doubled each time, capped at 5 minutes
    allow_changed: bool = False
    skip_invalid: bool = False


@dataclass(frozen=True)
class SendReport:
    """What one run did, and the journal's state after it."""

    journal: Path
    listed: SubscriberList
    already_done: int
    sent: int
    failed: int
    deferred: int
    elapsed: float
    counts: Counts
    failures: list[tuple[str, int | None, str]]
    refused: int = 0  # people on the list now whom the server refused for good (5xx)
    unfinished: int = 0  # people on the list now still pending or deferred: the next run tries them


@dataclass
class _Run:
    settings: SmtpSettings
    sender: str
    maker: Personaliser
    journal: Journal
    options: SendOptions
    progress: Callable[[str], None] | None
    limit: RateLimit
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[str] = field(default_factory=list)
    tally: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0, "deferred": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)
    todo: Iterator[Subscriber] = field(default_factory=lambda: iter(()))
    todo_lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self, status: str) -> None:
        with self.lock:
            self.tally[status] += 1
        if self.progress is not None:
            self.progress(status)

    def backoff(self, attempt: int) -> None:
        delay = min(self.options.retry_delay * 2 ** (attempt - 1), 300.0)
        self.stop.wait(delay * random.uniform(0.8, 1.2))  # jitter, not security

    def worker(self) -> None:
        conn: smtplib.SMTP | None = None
        try:
            while not self.stop.is_set():
                sub = self.take()
                if sub is None:
                    break
                conn = self.send(conn, sub)
        except Exception as err:  # e.g. the journal's disk is full: stop everyone, say why
            self.fail(f"{type(err).__name__}: {err}")
        finally:
            _close(conn)

    def take(self) -> Subscriber | None:
        # Each connection takes the next recipient itself: no feeder thread, no hand-off per message.
        with self.todo_lock:
            return next(self.todo, None)

    def send(self, conn: smtplib.SMTP | None, sub: Subscriber) -> smtplib.SMTP | None:
        message = self.maker.message(sub.email, sub.name, sub.fields)
        attempt = 0
        last = ""
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.settings)
                self.limit.wait(self.stop)
                reply = deliver(conn, self.sender, message)
            except _Fatal as err:
                self.fail(str(err))
                return None
            except _Reply as err:
                code: int | None = err.code
                last = f"{err.stage}: {err.code} {err.text}"
                if err.stage == "MAIL FROM" and err.code == 503:
                    # "Bad sequence of commands": the state of this connection was refused, not the sender.
                    # Start again on a fresh connection, retried like a 4xx.
                    _close(conn)
                    conn = None
                elif err.code >= 500:
                    if err.stage == "MAIL FROM":
                        self.fail(f"{self.settings.address} refused the sender {self.sender}: {err}")
                        return conn
                    self.journal.record(sub.key, "failed", code=err.code, reply=f"{err.stage}: {err.text}")
                    self.done("failed")
                    return conn
                elif err.code == 421:  # the server is closing this connection
                    _close(conn)
                    conn = None
            except (smtplib.SMTPException, OSError) as err:
                _close(conn)
                conn = None
                last = f"{self.settings.address}: {err or type(err).__name__}"
                code = None
            else:
                self.journal.record(sub.key, "sent", code=250, reply=reply, message_id=message.message_id)
                self.done("sent")
                return conn
            attempt += 1
            if attempt > self.options.retries:
                if code is None:
                    # The relay is unreachable, not this recipient's fault: stop, and leave the rest pending.
                    self.fail(f"giving up after {attempt} attempts: {last}")
                    return None
                self.journal.record(sub.key, "deferred", code=code, reply=last)
                self.done("deferred")
                return conn
            self.backoff(attempt)
        return conn

    def fail(self, why: str) -> None:
        with self.lock:
            self.fatal.append(why)
        self.stop.set()


def send_all(
    *,
    settings: SmtpSettings,
    sender: str,
    maker: Personaliser,
    parts: Parts,
    subscribers: Path,
    options: SendOptions,
    confirm: Callable[[int, Counts], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    started: Callable[[int], None] | None = None,
) -> SendReport:
    """Send the digest to every subscriber not yet sent or refused, recording each result in the journal."""
    listed = check_subscribers(subscribers)
    check_greeting(maker, listed)
    if not options.skip_invalid:
        require_clean(listed)
    path = journal_path(parts.folder)
    began = time.monotonic()
    with using_folder(parts.folder, content_hash=parts.content_hash), Journal(path) as journal:
        journal.bind(
            content_hash=parts.content_hash,
            subject=parts.subject,
            subscribers=subscribers.resolve(),
            allow_changed=options.allow_changed,
        )
        journal.add_pending((s.key, s.email) for s in iter_subscribers(subscribers, listed))
        journal.set_meta(completed_at="")
        done = journal.done_keys()
        todo = sum(s.key not in done for s in iter_subscribers(subscribers, listed))
        already = listed.count - todo
        if todo and confirm is not None and not confirm(todo, journal.counts()):
            raise SendError("not sent: confirmation declined")
        run = _Run(settings, sender, maker, journal, options, progress, RateLimit(options.rate))
        run.todo = (s for s in iter_subscribers(subscribers, listed) if s.key not in done)
        if todo:
            # Fail fast: the first connection checks TLS and login before any thread starts.
            try:
                first: smtplib.SMTP | None = connect(settings)
            except _Fatal as err:
                raise SendError(f"{err}; nothing was sent") from None
            except OSError as err:
                raise SendError(f"cannot connect to {settings.address}: {err}; nothing was sent") from None
            _close(first)
            if started is not None:
                started(todo)
            workers = [
                threading.Thread(target=run.worker, name=f"smtp-{n}", daemon=True)
                for n in range(min(options.connections, todo))
            ]
            for t in workers:
                t.start()
            try:
                for t in workers:
                    while t.is_alive():
                        t.join(0.2)
            except BaseException:
                run.stop.set()  # Ctrl-C: let each connection finish the message it is on
                for t in workers:
                    t.join(60)
                raise
        counts = journal.counts()
        # Judged on the list as it is now: rows of people taken off it since an earlier run do not count.
        sent_keys, failed_keys = journal.keys("sent"), journal.keys("failed")
        refused = unfinished = 0
        for s in iter_subscribers(subscribers, listed):
            refused += s.key in failed_keys
            unfinished += s.key not in sent_keys and s.key not in failed_keys
        del sent_keys, failed_keys
        # "Sent in full" (for build --since-last-send): everyone on the list is sent or refused for good.
        if not run.fatal and unfinished == 0:
            done_meta = {"completed_at": datetime.now(UTC).isoformat(timespec="seconds")}
            # What went out, for the next --since-last-send: the newest item of this version. A run that
            # sent nothing keeps the record of an earlier version that the list did get.
            if parts.newest_end is not None and (
                run.tally["sent"] or journal.get("sent_content_hash") in (None, parts.content_hash)
            ):
                done_meta["newest_item_end"] = parts.newest_end.isoformat()
                done_meta["sent_content_hash"] = parts.content_hash
            journal.set_meta(**done_meta)
        report = SendReport(
            path,
            listed,
            already,
            run.tally["sent"],
            run.tally["failed"],
            run.tally["deferred"],
            time.monotonic() - began,
            counts,
            journal.failures(),
            refused,
            unfinished,
        )
    if run.fatal:
        raise SendError(
            f"sending stopped: {run.fatal[0]}\n{report.sent} sent in this run; {counts}. "
            "Run the same command again to resume."
        )
    return report


def send_test(settings: SmtpSettings, sender: str, maker: Personaliser, address: str) -> str:
    """Send one copy to `address`, outside the journal; the server's reply."""
    try:
        email = validate_email(address, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as err:
        raise SendError(f"--test {address!r}: not a valid email address: {err}") from None
    message = maker.message(email)
    try:
        conn = connect(settings)
    except _Fatal as err:
        raise SendError(str(err)) from None
    except OSError as err:
        raise SendError(f"cannot connect to {settings.address}: {err}") from None
    try:
        return deliver(conn, sender, message)
    except _Reply as err:
        raise SendError(f"{settings.address} refused the test message at {err.stage}: {err}") from None
    except (smtplib.SMTPException, OSError) as err:
        raise SendError(f"{settings.address}: {err}") from None
    finally:
        _close(conn)


def dry_run(maker: Personaliser, subscribers: Path) -> tuple[Outgoing | None, SubscriberList]:
    """The first subscriber's complete message and the list's counts; connects to nothing."""
    listed = check_subscribers(subscribers)
    check_greeting(maker, listed)
    first = next(iter_subscribers(subscribers, listed), None)
    message = maker.message(first.email, first.name, first.fields) if first else None
    return message, listed
