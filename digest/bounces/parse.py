"""What one message in the bounce mailbox is: a delivery status notification (RFC 3464), a non-standard
bounce (recognised by flufl.bounce, Mailman's detectors), an auto-reply (RFC 3834 and the usual vacation
signs), a mailed unsubscribe, or something else. Pure: bytes in, a `Parsed` out; nothing is decided here.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from flufl.bounce import all_failures

# Our Message-ID (digest/message.py, Personaliser.message_id): it names the digest and the recipient.
OUR_ID = re.compile(rb"<digest\.[0-9a-f]{16}\.[0-9a-f]{24}@[^<>\s]+>", re.IGNORECASE)
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_LINE = re.compile(r"^\s*(?:[245]\d\d[ -]|.*\b[45]\.\d{1,3}\.\d{1,3}\b)")
# Who sends bounces: a message from one of these (or with an empty return path) may be a non-standard one.
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|failed|has failed|incomplete)|returned mail|failure notice|"
    r"mail delivery failed|non[- ]?delivery|could not be delivered",
    re.IGNORECASE,
)
# Vacation and out-of-office subjects in a few languages (en, de, fr, es, it, nl, pt, sv/da/no).
_VACATION_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic|matische|matique|matica|mático|mática|matisch)?[ -]?(?:reply|response|antwort|"
    r"réponse|reponse|respuesta|risposta|antwoord|resposta|svar)|autoreply|auto:|"
    r"(?:r[ée]ponse|respuesta|risposta|resposta)\s+autom|out of (?:the )?office|"
    r"on vacation|vacation|abwesenheit|abwesend|urlaub|absence|absent|congés|fuera de la oficina|"
    r"fuori sede|fuori ufficio|afwezig|ausente|frånvaro|fravær|ferie)",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|fw|fwd|wg)\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports: the address it names and how it failed."""

    recipient: str  # Original-Recipient where given, else Final-Recipient (the address we sent to)
    final: str  # Final-Recipient: where the mail was going when it failed (a forward may differ)
    permanent: bool
    status: str = ""  # the DSN Status (5.1.1), or one found in a non-standard bounce's text
    diagnostic: str = ""  # Diagnostic-Code, or the server's line quoted in the text
    action: str = ""  # failed, delayed (DSN) or "" (non-standard)


@dataclass(frozen=True)
class Parsed:
    """What a message is, and what it says; `kind` is dsn, bounce, autoreply, unsubscribe or other."""

    kind: str
    why: str  # one line: how the kind was recognised
    message_id: str = ""
    sender: str = ""  # the From address, lower-cased
    subject: str = ""
    date: datetime | None = None
    reporting_mta: str = ""
    failures: tuple[Failure, ...] = ()
    returned_ids: tuple[str, ...] = ()  # our Message-IDs found anywhere in it (the returned headers)


def header(msg: Message, name: str) -> str:
    """A header decoded to one line of text ('' when absent or undecodable)."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError):
        text = str(value)
    return " ".join(text.split())


def _addr(text: str) -> str:
    # "rfc822; a@b" (a DSN address type) or a plain address, maybe in angle brackets.
    kind, sep, rest = text.partition(";")
    value = rest if sep else kind
    return parseaddr(value.strip())[1].strip().lower()


def _date(msg: Message) -> datetime | None:
    try:
        when = parsedate_to_datetime(header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def returned_ids(raw: bytes, msg: Message) -> tuple[str, ...]:
    """Our Message-IDs in the message: in the raw text, and in base64 or quoted-printable parts."""
    found: dict[str, None] = {}
    chunks = [raw]
    for part in msg.walk():
        if not part.is_multipart() and part.get("Content-Transfer-Encoding", "").lower() in (
            "base64",
            "quoted-printable",
        ):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload)
    own = header(msg, "Message-ID").lower()
    for chunk in chunks:
        for m in OUR_ID.finditer(chunk):
            found.setdefault(m.group(0).decode("ascii", "replace").lower(), None)
    found.pop(own, None)  # a bounce's own id is never ours; guards a loop of our own messages
    return tuple(found)


def _dsn_failures(msg: Message) -> tuple[str, list[Failure]]:
    mta = ""
    failures: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            if block.get("Reporting-MTA") and not mta:
                kind, _sep, name = header(block, "Reporting-MTA").rpartition(";")
                mta = name.strip() or kind.strip()
            final = _addr(header(block, "Final-Recipient"))
            if not final:
                continue
            original = _addr(header(block, "Original-Recipient")) or _addr(
                header(block, "X-Actual-Recipient")
            )
            action = header(block, "Action").lower()
            status_m = STATUS.search(header(block, "Status"))
            status = status_m.group(0) if status_m else ""
            if action in ("delivered", "relayed", "expanded") and not status.startswith(("4", "5")):
                continue  # a success notice: nothing failed
            if status_m:
                permanent = status_m.group(1) == "5"
            elif action in ("failed", "delayed"):
                permanent = action == "failed"
            else:
                continue
            diagnostic = header(block, "Diagnostic-Code")
            failures.append(Failure(original or final, final, permanent, status, diagnostic, action))
    return mta, failures


def _text(msg: Message) -> str:
    lines: list[str] = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_subtype() == "plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                lines.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(lines)


def _nonstandard(msg: Message) -> list[Failure]:
    temporary, permanent = all_failures(msg)
    text = _text(msg)
    status_m = STATUS.search(text)
    status = status_m.group(0) if status_m else ""
    line = next((s.strip() for s in text.splitlines() if _SMTP_LINE.match(s)), "")
    out: list[Failure] = []
    for raw_addr, perm in [*((a, True) for a in sorted(permanent)), *((a, False) for a in sorted(temporary))]:
        address = raw_addr.decode("ascii", "replace").strip().lower()
        if address and "@" in address and not any(f.recipient == address for f in out):
            out.append(Failure(address, address, perm, status, line, ""))
    return out


def from_daemon(msg: Message) -> bool:
    """True when the message looks like a mail server's report, not a person's mail."""
    sender = parseaddr(header(msg, "From"))[1].lower()
    if sender.partition("@")[0] in _DAEMONS:
        return True
    if header(msg, "Return-Path").replace(" ", "") == "<>" or msg.get("X-Failed-Recipients"):
        return True
    return bool(_BOUNCE_SUBJECT.search(header(msg, "Subject")))


def auto_reply(msg: Message) -> str:
    """Why the message is an automatic reply (RFC 3834 and the common non-standard signs), or ''."""
    submitted = header(msg, "Auto-Submitted").lower()
    if submitted and not submitted.startswith("no"):
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Auto-Response-Suppress"):
        if msg.get(name) is not None:
            return f"{name} header"
    precedence = header(msg, "Precedence").lower()
    if precedence == "auto_reply":
        return f"Precedence: {precedence}"
    subject = header(msg, "Subject")
    if _VACATION_SUBJECT.match(_REPLY_PREFIX.sub("", subject)):
        return f"vacation subject {subject!r}"
    return ""


def _recipients(msg: Message) -> set[str]:
    values = [
        str(v)
        for n in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
        for v in msg.get_all(n, [])
    ]
    return {a.lower() for _name, a in getaddresses(values) if a}


def parse(raw: bytes, *, unsubscribe_mailto: str = "") -> Parsed:
    """Read one message: what it is and what it says."""
    msg = email.message_from_bytes(raw)
    base = Parsed(
        "other",
        "not a bounce, an auto-reply or an unsubscribe",
        message_id=header(msg, "Message-ID"),
        sender=parseaddr(header(msg, "From"))[1].lower(),
        subject=header(msg, "Subject"),
        date=_date(msg),
        returned_ids=returned_ids(raw, msg),
    )
    report = msg.get_content_type() == "multipart/report"
    if report and str(msg.get_param("report-type", "")).lower() == "delivery-status":
        mta, failures = _dsn_failures(msg)
        why = "delivery status notification (RFC 3464)" + ("" if failures else " that reports no failure")
        return replace(base, kind="dsn", why=why, reporting_mta=mta, failures=tuple(failures))
    if from_daemon(msg):
        failures = _nonstandard(msg)
        if failures:
            return replace(
                base, kind="bounce", why="non-standard bounce (flufl.bounce)", failures=tuple(failures)
            )
    why = auto_reply(msg)
    if why:
        return replace(base, kind="autoreply", why=f"auto-reply ({why})")
    subject = _REPLY_PREFIX.sub("", base.subject).strip().lower()
    mailto = unsubscribe_mailto.lower()
    if mailto and mailto in _recipients(msg) and subject == "unsubscribe":
        return replace(base, kind="unsubscribe", why=f"mailed unsubscribe to {mailto}")
    return base
