"""Digest parts + recipient -> a MIME message (multipart/alternative: text, then HTML; UTF-8)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.errors import DigestError


class HeaderError(DigestError):
    """A header value would carry a line break (header injection) or is otherwise unusable."""


def check_header(name: str, value: str) -> str:
    """Refuse CR, LF and other control characters in a header value, naming the header."""
    bad = next((c for c in value if c in "\r\n\x00" or (ord(c) < 32 and c != "\t")), None)
    if bad is not None:
        raise HeaderError(
            f"{name}: line breaks and control characters are not allowed in a header ({value!r})"
        )
    return value


def build_message(
    *,
    subject: str,
    sender: Address,
    html: str,
    text: str,
    date: datetime,
    message_id: str,
    to: Address | None = None,
    reply_to: Address | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """Assemble one complete message; serialise it with `policy=SMTP` (CRLF line ends)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    if to is not None:
        msg["To"] = to
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    msg["Subject"] = check_header("Subject", subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = check_header("Message-ID", message_id)
    msg["MIME-Version"] = "1.0"
    for name, value in (headers or {}).items():
        msg[name] = check_header(name, value)
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg
