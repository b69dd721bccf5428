"""The bounce mailbox: an IMAP folder or a Maildir, read without changing what was not processed.

IMAP: messages are fetched with BODY.PEEK[] (fetching does not set \\Seen), and a processed one gets the
keyword $DigestProcessed, or \\Seen where the server keeps no keywords; the next run skips those. Maildir:
a processed message gets the S (seen) flag and moves from new/ to cur/, as a mail reader does when one reads
it; messages that already carry S are skipped. Nothing is ever deleted or moved to another folder.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from digest.config import Config
from digest.errors import ConfigError, MailboxError
from digest.smtp import SmtpSettings, is_loopback, tls_context

KEYWORD = "$DigestProcessed"
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}


@dataclass(frozen=True)
class Stored:
    """One message as the mailbox holds it: its key there (IMAP UID, Maildir name) and its bytes."""

    key: str
    raw: bytes


class Mailbox(Protocol):
    """What the bounce reader needs of a mailbox."""

    name: str

    def unprocessed(self) -> Iterator[Stored]:
        """The messages not yet marked as processed."""
        ...

    def mark(self, key: str) -> None:
        """Mark one message as processed."""
        ...

    def close(self) -> None:
        """Let go of the mailbox."""
        ...


@dataclass(frozen=True, kw_only=True)
class ImapSettings:
    """Where the bounce mailbox is. The password comes from DIGEST_IMAP_PASSWORD and is never shown."""

    host: str
    port: int
    security: str
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    ca_file: Path | None = None
    timeout: float = 30.0

    @property
    def address(self) -> str:
        """host:port, for messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def imap_settings(config: Config) -> ImapSettings:
    """The IMAP settings of the config ([bounces] and flags), the password from the environment; checked."""
    b = config.bounces
    if not b.imap_host:
        raise ConfigError("no IMAP server: pass --imap HOST (or --maildir DIR), or set [bounces] imap_host")
    if b.imap_security == "none" and not is_loopback(b.imap_host):
        raise ConfigError(
            f'bounces.imap_security = "none" sends the password in clear text and is allowed only to a '
            f"loopback address (127.0.0.1, ::1, localhost), not to {b.imap_host!r}: use ssl or starttls"
        )
    if not b.imap_user:
        raise ConfigError("no IMAP user: pass --user USER or set [bounces] imap_user")
    if not config.secrets.imap_password:
        raise ConfigError(
            f"the IMAP user is {b.imap_user!r} but DIGEST_IMAP_PASSWORD is not set "
            "(the password is read from the environment only)"
        )
    return ImapSettings(
        host=b.imap_host,
        port=b.imap_port or DEFAULT_PORTS[b.imap_security],
        security=b.imap_security,
        user=b.imap_user,
        password=config.secrets.imap_password,
        folder=b.imap_folder,
        ca_file=config.smtp.ca_file,
        timeout=config.smtp.timeout,
    )


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapMailbox:
    """A folder on an IMAP server; read-only (EXAMINE) for a dry run."""

    def __init__(self, settings: ImapSettings, *, readonly: bool) -> None:
        self.settings = settings
        self.name = f"{settings.folder}@{settings.host}"
        self.readonly = readonly
        where = settings.address
        # The same verification as the SMTP relay: the system's CAs plus the configured extra CA file.
        context = tls_context(SmtpSettings(host=settings.host, port=settings.port, ca_file=settings.ca_file))
        try:
            if settings.security == "ssl":
                self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    settings.host, settings.port, ssl_context=context, timeout=settings.timeout
                )
            else:
                self.conn = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
                if settings.security == "starttls":
                    self.conn.starttls(ssl_context=context)
        except ssl.SSLCertVerificationError as err:
            raise MailboxError(
                f"IMAP {where}: the server's TLS certificate is not trusted ({err.verify_message}); "
                "for a private CA set [smtp] ca_file (DIGEST_SMTP_CA_FILE)"
            ) from err
        except (ssl.SSLError, imaplib.IMAP4.error) as err:
            raise MailboxError(f"IMAP {where}: TLS failed: {err}") from err
        except OSError as err:
            raise MailboxError(f"IMAP {where}: cannot connect: {err.strerror or err}") from err
        try:
            self.conn.login(settings.user, settings.password)
        except imaplib.IMAP4.error as err:
            self.close()
            raise MailboxError(f"IMAP {where}: login as {settings.user!r} refused: {_text(err)}") from err
        typ, data = self.conn.select(_quote(settings.folder), readonly=readonly)
        if typ != "OK":
            self.close()
            raise MailboxError(f"IMAP {where}: cannot open folder {settings.folder!r}: {_text(data)}")
        permanent = b" ".join(d for d in self.conn.response("PERMANENTFLAGS")[1] if isinstance(d, bytes))
        # A server that keeps no keywords of ours gets \Seen instead; read-only, PERMANENTFLAGS says nothing.
        self.flag = KEYWORD if readonly or b"\\*" in permanent or KEYWORD.encode() in permanent else "\\Seen"

    def unprocessed(self) -> Iterator[Stored]:
        """The messages without our mark, oldest first (BODY.PEEK: reading sets no flag)."""
        criterion = ("UNKEYWORD", KEYWORD) if self.flag == KEYWORD else ("UNSEEN",)
        typ, data = self.conn.uid("SEARCH", *criterion)
        if typ != "OK":
            raise MailboxError(f"IMAP {self.settings.address}: SEARCH failed: {_text(data)}")
        for uid in (data[0] or b"").split():
            typ, fetched = self.conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next((p[1] for p in fetched if isinstance(p, tuple)), None)
            if typ != "OK" or raw is None:
                continue  # expunged by someone else meanwhile
            yield Stored(uid.decode(), bytes(raw))

    def mark(self, key: str) -> None:
        """Flag one message as processed."""
        typ, data = self.conn.uid("STORE", key, "+FLAGS.SILENT", f"({self.flag})")
        if typ != "OK":
            raise MailboxError(f"IMAP {self.settings.address}: cannot flag message {key}: {_text(data)}")

    def close(self) -> None:
        """Log out (closing the folder would expunge nothing we did, but logout is enough)."""
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()


def _text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


_INFO = re.compile(r"^(?P<key>[^:]+)(?::2,(?P<flags>[A-Za-z]*))?$")


class MaildirMailbox:
    """A Maildir folder (new/, cur/, tmp/); processed messages get the S flag."""

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise MailboxError(f"--maildir {path}: not a Maildir (it needs cur/ and new/ folders)")
        self.path = path
        self.name = str(path)

    def _files(self) -> Iterator[tuple[str, Path, str]]:
        for sub in ("new", "cur"):
            for entry in sorted(os.scandir(self.path / sub), key=lambda e: e.name):
                m = _INFO.match(entry.name)
                if m is None or entry.name.startswith(".") or not entry.is_file():
                    continue
                yield m["key"], Path(entry.path), m["flags"] or ""

    def unprocessed(self) -> Iterator[Stored]:
        """The messages without the S flag."""
        for key, path, flags in self._files():
            if "S" in flags:
                continue
            try:
                yield Stored(key, path.read_bytes())
            except FileNotFoundError:
                continue  # a mail reader moved it meanwhile

    def mark(self, key: str) -> None:
        """Add the S flag (a rename into cur/, as mail readers do)."""
        for k, path, flags in self._files():
            if k == key:
                new = "".join(sorted({*flags, "S"}))
                try:
                    path.rename(self.path / "cur" / f"{key}:2,{new}")
                except OSError as err:
                    raise MailboxError(f"{path}: cannot mark as processed: {err.strerror}") from err
                return

    def close(self) -> None:
        """Nothing to let go of."""
