"""Digest parts + recipient -> a MIME message (multipart/alternative: text, then HTML; UTF-8)."""

from __future__ import annotations

import binascii
import hashlib
import html as htmllib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from digest.config import Config, greeting_fields
from digest.errors import DigestError
from digest.render import GREETING, UNSUBSCRIBE_URL
from digest.tokens import check_unsubscribe_secret, unsubscribe_token
from digest.words import lang_tag, slugify

if TYPE_CHECKING:
    from digest.dkim import Signer

MAX_LINE = 998  # RFC 5322 2.1.1: no line of a message longer, CRLF aside


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


# ---- per-recipient messages for `digest send` ----
#
# MJML and premailer ran once, in the build. Per recipient we only fill the placeholders of the rendered
# parts (plain str.replace), then quoted-printable-encode the filled parts (binascii, in C) and join them to
# headers serialised once. The placeholders are filled *before* encoding, so a token can never be split
# by a soft line break. Every line ends in CRLF, as SMTP wants.


@dataclass(frozen=True)
class Outgoing:
    """One personalised message, as it goes after the SMTP DATA command (dot-stuffed, ending in CRLF.CRLF)."""

    recipient: str
    message_id: str
    wire: bytes

    @property
    def data(self) -> bytes:
        """The message itself (CRLF line ends), without the SMTP dot-stuffing and terminator."""
        return _unstuff(self.wire[:-3])


_STUFF = re.compile(rb"(?m)^\.")


def _unstuff(wire: bytes) -> bytes:
    # bytes.replace, not a multi-line regex: ten times faster on a 30 KB message (BDAT sends this).
    return (wire[1:] if wire.startswith(b"..") else wire).replace(b"\r\n..", b"\r\n.")


def _qp(text: str) -> bytes:
    # Quoted-printable (RFC 2045) in C, then SMTP transparency (RFC 5321 4.5.2): a leading "." is doubled.
    return _STUFF.sub(b"..", binascii.b2a_qp(text.encode(), istext=True))


class _Body:
    """A body part (CRLF lines) cut into runs of lines: the runs without a placeholder are encoded once;
    only the few lines with a placeholder are filled and encoded per recipient. Quoted-printable encodes
    each line on its own (a hard line break resets the soft-break column), so the pieces join into exactly
    the encoding of the whole filled part."""

    def __init__(self, text: str, tokens: tuple[str, ...]) -> None:
        lines = text.split("\r\n")
        if lines[-1] == "":
            lines.pop()
        self.chunks: list[bytes | str] = []
        run: list[str] = []
        for line in lines:
            if any(t in line for t in tokens):
                if run:
                    self.chunks.append(_qp("".join(run)))
                    run = []
                self.chunks.append(line + "\r\n")
            else:
                run.append(line + "\r\n")
        if run:
            self.chunks.append(_qp("".join(run)))

    def fill(self, values: tuple[tuple[str, str], ...]) -> list[bytes]:
        """The encoded, dot-stuffed part with these placeholder values."""
        out = []
        for chunk in self.chunks:
            if isinstance(chunk, bytes):
                out.append(chunk)
                continue
            for token, value in values:
                chunk = chunk.replace(token, value)
            out.append(_qp(chunk))
        return out


class _Columns(dict[str, str]):
    """A subscriber's values by column name, as the list's header spells it or in any case: columns are
    matched case aside ({Name} in a greeting is the `name` column), as greeting_fields checks them."""

    def __missing__(self, key: str) -> str:
        if key.lower() in self:
            return self[key.lower()]
        raise KeyError(key)


class Personaliser:
    """The digest's parts prepared once; `message(email, ...)` makes one recipient's message quickly.

    The one path to a message: `digest send` calls it per recipient, and the build calls it once for the
    preview recipient to write digest.eml and digest.html, so the preview has the sent shape.
    """

    def __init__(
        self,
        *,
        subject: str,
        html: str,
        text: str,
        content_hash: str,
        sender: Address,
        date: datetime,
        reply_to: Address | None = None,
        list_id: str,
        list_name: str,
        unsubscribe_url: str = "",
        unsubscribe_mailto: str = "",
        secret: str = "",
        greeting: str = "Hello {name},",
        greeting_fallback: str = "Hello,",
        placeholders: Mapping[str, str] | None = None,
        signer: Signer | None = None,
        language: str = "",
    ) -> None:
        if not unsubscribe_url and not unsubscribe_mailto:
            raise HeaderError(
                "no unsubscribe address: set [send] unsubscribe_url (https, one-click) "
                "and/or unsubscribe_mailto"
            )
        if unsubscribe_url and not secret:
            raise HeaderError(
                "the unsubscribe_url needs its {token}: set the secret in the environment variable "
                "DIGEST_UNSUBSCRIBE_SECRET"
            )
        tokens = placeholders or {"greeting": GREETING, "unsubscribe_url": UNSUBSCRIBE_URL}
        self.greeting_token, self.unsubscribe_token = tokens["greeting"], tokens["unsubscribe_url"]
        self.content_hash = content_hash
        self.sender = sender
        self.domain = sender.domain
        self.secret = secret
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_mailto = unsubscribe_mailto
        self.greeting = greeting
        self.greeting_uses = greeting_fields(greeting)
        self.greeting_fallback = check_header("greeting_fallback", greeting_fallback)
        crlf = "\r\n"
        self.html = html.replace("\r\n", "\n").replace("\n", crlf)
        self.text = text.replace("\r\n", "\n").replace("\n", crlf)
        both = (self.greeting_token, self.unsubscribe_token)
        self.html_body = _Body(self.html, both)
        self.text_body = _Body(self.text, both)
        self.boundary = f"=_digest_{content_hash[:24]}"  # "=_" never occurs in quoted-printable text
        head = EmailMessage(policy=SMTP)
        head["From"] = sender
        if reply_to is not None:
            head["Reply-To"] = reply_to
        head["Subject"] = check_header("Subject", subject)
        head["Date"] = format_datetime(date)
        head["List-Id"] = f"{check_header('List-Id', list_name)} <{check_header('List-Id', list_id)}>"
        if unsubscribe_url:
            head["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if language:
            # RFC 3282: the reader's client (and a screen reader) knows the message's language.
            head["Content-Language"] = lang_tag(language)
        head["MIME-Version"] = "1.0"
        self.head = head.as_bytes(policy=SMTP).rstrip(b"\r\n") + b"\r\n"
        b = self.boundary
        content_type = f'Content-Type: multipart/alternative;\r\n boundary="{b}"\r\n'.encode()
        self.body_head = (
            f'\r\n--{b}\r\nContent-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self.mime_head = content_type + self.body_head
        # DKIM: the headers every message shares are canonicalised once; t= is the send's start.
        self.signing = signer.bind(self.head + content_type) if signer is not None else None
        self.timestamp = int(date.timestamp())
        self.mime_mid = (
            f'\r\n--{b}\r\nContent-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self.mime_tail = f"\r\n--{b}--\r\n".encode()

    def greeting_for(self, name: str, fields: Mapping[str, str]) -> str:
        """The greeting with this subscriber's values, or the fallback when a value it uses is empty."""
        values = _Columns({k: " ".join(v.split()) for k, v in fields.items()})
        values["name"] = " ".join(name.split())
        if any(not values.get(k) for k in self.greeting_uses):
            return self.greeting_fallback
        return self.greeting.format_map(values)

    def unsubscribe_for(self, email: str) -> tuple[str, str]:
        """(the link shown in the body, the List-Unsubscribe header value) for one address."""
        uris = []
        url = ""
        if self.unsubscribe_url:
            token = unsubscribe_token(self.secret, email)
            url = self.unsubscribe_url.format(email=quote(email, safe=""), token=token)
            uris.append(f"<{url}>")
        if self.unsubscribe_mailto:
            mailto = f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe"
            uris.append(f"<{mailto}>")
            url = url or mailto
        return url, ",\r\n ".join(uris)

    def message_id(self, email: str) -> str:
        """Unique per recipient and digest, and the same on a resend: <hash.addresshash@sender-domain>."""
        who = hashlib.sha256(f"{self.content_hash}\0{email.lower()}".encode()).hexdigest()[:24]
        return f"<digest.{self.content_hash[:16]}.{who}@{self.domain}>"

    def values(self, email: str, name: str = "", fields: Mapping[str, str] | None = None) -> Values:
        """What this recipient's message shows where the placeholders are."""
        check_header("To", email)
        check_header("To", name)
        link, list_unsubscribe = self.unsubscribe_for(email)
        return Values(self.greeting_for(" ".join(name.split()), fields or {}), link, list_unsubscribe)

    def fill(self, values: Values) -> tuple[str, str]:
        """(html, text) with these values in place of the placeholders, unencoded (the build's preview)."""
        html = self.html.replace(self.greeting_token, htmllib.escape(values.greeting, quote=False))
        html = html.replace(self.unsubscribe_token, htmllib.escape(values.link, quote=True))
        text = self.text.replace(self.greeting_token, values.greeting)
        text = text.replace(self.unsubscribe_token, values.link)
        return html.replace("\r\n", "\n"), text.replace("\r\n", "\n")

    def message(self, email: str, name: str = "", fields: Mapping[str, str] | None = None) -> Outgoing:
        """One recipient's complete message (bytes with CRLF line ends, 7-bit: quoted-printable parts)."""
        name = " ".join(check_header("To", name).split())  # a line break is refused, not folded away
        v = self.values(email, name, fields)
        html_values = (
            (self.greeting_token, htmllib.escape(v.greeting, quote=False)),
            (self.unsubscribe_token, htmllib.escape(v.link, quote=True)),
        )
        text_values = ((self.greeting_token, v.greeting), (self.unsubscribe_token, v.link))
        message_id = self.message_id(email)
        to = _format_to(email, name)
        ids = f"Message-ID: {message_id}\r\nList-Unsubscribe: {v.list_unsubscribe}\r\n".encode()
        body = [
            *self.text_body.fill(text_values),
            self.mime_mid,
            *self.html_body.fill(html_values),
            self.mime_tail,
        ]
        signature = b""
        if self.signing is not None:
            # The body as the recipient gets it (without the SMTP dot-stuffing), hashed; signed once.
            unstuffed = _unstuff(b"".join([self.body_head[2:], *body]))
            signature = self.signing.sign(to + ids, unstuffed, timestamp=self.timestamp)
        wire = b"".join([signature, self.head, to, ids, self.mime_head, *body, b".\r\n"])
        return Outgoing(email, message_id, wire)


@dataclass(frozen=True)
class Values:
    """One recipient's values: the greeting, the unsubscribe link in the body, the List-Unsubscribe value."""

    greeting: str
    link: str
    list_unsubscribe: str


def _format_to(email: str, name: str) -> bytes:
    if name and (not name.isascii() or len(name) + len(email) > 60):
        # Non-ASCII or long: let the email package encode (RFC 2047) and fold it.
        header = SMTP.header_factory("To", str(Address(display_name=name, addr_spec=email)))
        folded = str(header.fold(policy=SMTP))
        if max(map(len, folded.split("\r\n"))) > MAX_LINE:
            # An ASCII word too long to fold (a 10,000-letter name): encoded words can be cut anywhere.
            words = Header(name, "utf-8", maxlinelen=76, header_name="To").encode(linesep="\r\n")
            folded = f"To: {words}\r\n <{email}>\r\n"
        return folded.encode("ascii")
    return f"To: {formataddr((name, email))}\r\n".encode()


class Parts(Protocol):
    """The built parts a message is made of (outdir.Parts, or what a send loaded of them)."""

    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def placeholders(self) -> Mapping[str, str]: ...


def list_id(config: Config) -> str:
    """The List-Id: [send] list_id, or <slug of the title>.<domain of From>."""
    return config.send.list_id or f"{slugify(config.title, fallback='digest')}.{config.sender.domain}"


def N_(text: str) -> str:  # gettext's name for "translated where it is used"
    """Mark a string for `pybabel extract`; it is translated where it is used."""
    return text


# The config's default greetings, in the catalogs: a further language's digest greets in its language.
DEFAULT_GREETINGS = (N_("Hello {name},"), N_("Hello,"))


def personaliser(
    config: Config, parts: Parts, *, now: datetime, preview: bool = False, lang: str | None = None
) -> Personaliser:
    """The message maker of a built digest, from the config and the secrets.

    `preview` (the build's digest.eml and digest.html): where the send settings are not there yet, the
    unsubscribe link is a mailto: to the sender and an https link without a secret gets a dummy token, so a
    workspace builds before anyone has set up sending. A send never uses these stand-ins. The preview is
    never DKIM-signed (a build needs no private key); a send checks the secret's strength and signs each
    message when [dkim] is set up, refusing a bad key with a ConfigError before anything goes.
    `lang`: the digest's language, for its greeting and the list's name.
    """
    texts = config.texts(lang or config.language)
    greeting, fallback = config.send.greeting, config.send.greeting_fallback
    if lang and lang != config.language:
        from digest.i18n import translations

        # The default greetings are in the catalogs (the workspace's too); a team's own are not.
        words = translations(lang, config.paths.locale)
        greeting = texts.greeting or words.gettext(greeting)
        fallback = texts.greeting_fallback or words.gettext(fallback)
    url, mailto, secret = (
        config.send.unsubscribe_url,
        config.send.unsubscribe_mailto,
        config.secrets.unsubscribe_secret,
    )
    signer = None
    if preview:
        if url and not secret:
            secret = "preview: DIGEST_UNSUBSCRIBE_SECRET is not set"  # noqa: S105 - a stand-in, never sent
        if not url and not mailto:
            mailto = config.sender.addr_spec
    else:
        from digest.dkim import signer_from_config

        if url:
            check_unsubscribe_secret(secret)
        signer = signer_from_config(config)
    return Personaliser(
        subject=parts.subject,
        html=parts.html,
        text=parts.text,
        content_hash=parts.content_hash,
        sender=config.sender_in(lang),  # the address is [email] from's; the name may be the language's
        date=now,
        reply_to=config.reply_to,
        list_id=list_id(config),
        list_name=texts.title,
        unsubscribe_url=url,
        unsubscribe_mailto=mailto,
        secret=secret,
        greeting=greeting,
        greeting_fallback=fallback,
        placeholders=parts.placeholders,
        signer=signer,
        language=lang or config.language,
    )


def preview_recipient(config: Config) -> Address:
    """Who the build's preview message (digest.eml) is addressed to: the sender itself."""
    return config.sender
